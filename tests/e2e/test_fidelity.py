"""Fidelity of what tenants receive, end to end: Switchyard's own built fixtures
(Tests/Fixtures) and the recorded Anthropic thinking stream, replayed by a real HTTP
upstream (fidelity_upstream.py) whole and re-chunked at seeded boundaries, through a
running `switchyard serve`, to the official openai SDK and to plain HTTP.

- A stream body that ends in a bare JSON error object ends the client's stream with an
  error event and no [DONE], and is metered with its error.
- Gemini 3 `partialArgs` become one named tool call whose arguments parse.
- Every successful stream asked for usage ends with a usage chunk, estimated (and
  flagged so in the ledger) when the upstream sent none.
- Reasoning shows as `reasoning_content` (and Anthropic's signed `thinking_blocks`) when
  the request asks for it or the deployment exposes it, and only then.
- No answer, chunk, header or error names a deployment, an upstream model or a provider.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

import fidelity_upstream as upstream
import recordings
import replay_upstream as replay
from conftest import ADMIN_TOKEN, BCRYPT_COST, binary, free_port, stop, tenant_key, wait_for

SEEDS = ["", "1", "2", "3"]
MESSAGES = [{"role": "user", "content": "What is the weather in Boston?"}]

PROVIDERS = {
    "openai": {"id": "vendor-oai-zq", "kind": "openai", "path": "/v1", "env": "FIDELITY_OPENAI_KEY", "key": "sk-fidelity-openai"},
    "azure": {"id": "vendor-azure-zq", "kind": "azure-openai", "path": "", "env": "FIDELITY_AZURE_KEY", "key": "azure-fidelity-key"},
    "anthropic": {"id": "vendor-anthropic-zq", "kind": "anthropic", "path": "", "env": "FIDELITY_ANTHROPIC_KEY", "key": "sk-ant-fidelity"},
    "gemini": {"id": "vendor-gemini-zq", "kind": "gemini", "path": "/v1beta", "env": "FIDELITY_GEMINI_KEY", "key": "gemini-fidelity-key"},
    "engine": {"id": "vendor-engine-zq", "kind": "engine"},
}
ENGINE_POOL = "fidelity-pool"

# Fixture scenarios by the provider that serves them; deployment, public model and
# upstream model are all `<scenario>@<seed>` (the seed picks the chunking).
SCENARIOS = {
    "gemini-cancelled": "gemini", "gemini-partial-args": "gemini", "gemini-partial-args-array": "gemini",
    "gemini-blocked-no-usage": "gemini", "gemini-thoughts": "gemini",
    "openai-bare-error": "openai", "openai-no-usage": "openai",
    "anthropic-thinking": "anthropic",
}
# Deployments of the reasoning scenarios with `expose_reasoning`, public model `exposed-<name>`.
EXPOSED = ["anthropic-thinking", "gemini-thoughts"]

# The public-name cases: per provider kind, the public model tenants ask for, and the
# deployment and upstream model behind it, none of which a tenant may ever see.
KINDS = ["openai", "azure", "anthropic", "gemini", "engine"]
CODES = dict(zip(KINDS, "abcde"))
NAMING_UPSTREAM = {
    "openai": "naming-openai-zq41", "azure": "naming-azure-zq42", "anthropic": "naming-anthropic-zq43",
    "gemini": "naming-gemini-zq44", "engine": "naming-engine/Zq-8B-Instruct",
}
NAMING_ERROR_UPSTREAM = {
    "openai": "naming-error-openai-zq51", "azure": "naming-error-azure-zq52", "anthropic": "naming-error-anthropic-zq53",
    "gemini": "naming-error-gemini-zq54", "engine": "naming-error-engine/Zq-Err-8B",
}


def seed_id(seed: str) -> str:
    return f"seed-{seed or 'whole'}"


def name(scenario: str, seed: str = "") -> str:
    return f"{scenario}@{seed}" if seed else scenario


def naming_public(kind: str, seed: str = "") -> str:
    return f"house-chat-{CODES[kind]}{seed}"


def naming_deployment(kind: str, seed: str = "") -> str:
    return f"route-zq-{CODES[kind]}{seed}"


def error_public(kind: str) -> str:
    return f"house-err-{CODES[kind]}"


def error_deployment(kind: str) -> str:
    return f"route-zq-err-{CODES[kind]}"


def configuration(base: str) -> dict:
    providers = []
    for entry in PROVIDERS.values():
        if entry["kind"] == "engine":
            providers.append({"id": entry["id"], "kind": "engine", "engine_pool": ENGINE_POOL})
            continue
        provider = {"id": entry["id"], "kind": entry["kind"], "base_url": base + entry["path"], "api_key_env": entry["env"]}
        if entry["kind"] == "azure-openai":
            provider["api_version"] = "2024-10-21"
        providers.append(provider)
    deployments, models = [], []

    def serve(public: str, deployment: str, kind: str, model: str, **extra) -> None:
        deployments.append({"id": deployment, "provider": PROVIDERS[kind]["id"], "model": model, **extra})
        models.append({"name": public, "routes": [deployment]})

    for scenario, kind in SCENARIOS.items():
        for seed in SEEDS:
            serve(name(scenario, seed), name(scenario, seed), kind, name(scenario, seed))
    for scenario in EXPOSED:
        for seed in SEEDS:
            serve(f"exposed-{name(scenario, seed)}", f"exposed-{name(scenario, seed)}", SCENARIOS[scenario],
                  name(scenario, seed), expose_reasoning=True)
    for kind in KINDS:
        for seed in SEEDS:
            serve(naming_public(kind, seed), naming_deployment(kind, seed), kind, name(NAMING_UPSTREAM[kind], seed))
        serve(error_public(kind), error_deployment(kind), kind, NAMING_ERROR_UPSTREAM[kind])
    return {
        "providers": providers,
        "engine_pools": [{"id": ENGINE_POOL, "replicas": [{"url": f"{base}/engine/v1", "slots": 64}]}],
        "deployments": deployments,
        "models": models,
        "tiers": [{"name": "enterprise", "priority": 100}],
    }


@dataclass
class Fidelity:
    """A running Switchyard in front of the fidelity upstream, and a tenant's client."""

    client: openai.OpenAI
    proxy: str
    key: str
    database: Path
    upstream: upstream.FidelityUpstream
    config: dict

    def post(self, body: dict) -> tuple[int, list, bytes]:
        """The raw answer to a chat request: status, header pairs, body bytes."""
        with httpx.stream("POST", self.proxy + "/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {self.key}"}, timeout=30) as response:
            return response.status_code, response.headers.multi_items(), response.read()

    def ledger_row(self, request_id: str) -> dict:
        """The usage event of `request_id`; the writer batches, so it may take a moment."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(self.database) as db:
                db.row_factory = sqlite3.Row
                row = db.execute("SELECT * FROM usage_events WHERE request_id = ?", (request_id,)).fetchone()
            if row is not None:
                return dict(row)
            time.sleep(0.05)
        raise AssertionError(f"no usage event for {request_id}")

    def usage_by_model(self) -> dict:
        """The admin usage report, grouped by public model."""
        response = httpx.get(self.proxy + "/admin/v1/usage?group_by=model",
                             headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        response.raise_for_status()
        return {row["group"]: row for row in response.json()["data"]}

    def last_request(self, model: str) -> dict:
        sent = self.upstream.requests_for(model)
        assert sent, f"the upstream saw no request for {model}"
        return sent[-1]


@pytest.fixture(scope="module")
def fidelity():
    server = upstream.start()
    directory = Path(tempfile.mkdtemp(prefix="switchyard-fidelity-"))
    config = configuration(f"http://127.0.0.1:{server.port}")
    (directory / "providers.json").write_text(json.dumps(config))
    port = free_port()
    environment = {**os.environ, "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST}
    environment.update({entry["env"]: entry["key"] for entry in PROVIDERS.values() if "env" in entry})
    database = directory / "db.sqlite"
    process = subprocess.Popen(
        [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(database), "--port", str(port)],
        env=environment, stdout=open(directory / "serve.out", "w"), stderr=open(directory / "serve.log", "w"),
    )
    proxy = f"http://127.0.0.1:{port}"

    def cli(*args: str) -> dict:
        return json.loads(subprocess.run([binary(), *args, "--json", "--server", proxy, "--token", ADMIN_TOKEN],
                                         capture_output=True, text=True, check=True, timeout=60).stdout)

    try:
        wait_for(proxy + "/health", process)
        tenant = cli("tenant", "create", "--name", "fidelity", "--tier", "enterprise")
        key = tenant_key(proxy, tenant["id"], "fidelity")["key"]
        client = openai.OpenAI(base_url=proxy + "/v1", api_key=key, max_retries=0, timeout=30)
        yield Fidelity(client, proxy, key, database, server, config)
    finally:
        stop(process)
        server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)


# MARK: Reading streams


@dataclass
class Streamed:
    """What the SDK made of a stream: its chunks, and the error it raised, if any."""

    chunks: list = field(default_factory=list)
    error: Exception | None = None
    request_id: str = ""

    @property
    def deltas(self) -> list:
        return [choice.delta for chunk in self.chunks for choice in chunk.choices]

    @property
    def content(self) -> str:
        return "".join(delta.content or "" for delta in self.deltas)

    @property
    def reasoning(self) -> str:
        return "".join(extra(delta, "reasoning_content") or "" for delta in self.deltas)

    @property
    def thinking_blocks(self) -> list:
        return [block for delta in self.deltas for block in extra(delta, "thinking_blocks") or []]

    @property
    def tool_calls(self) -> list:
        return [call for delta in self.deltas for call in delta.tool_calls or []]

    @property
    def finish_reasons(self) -> list:
        return [choice.finish_reason for chunk in self.chunks for choice in chunk.choices if choice.finish_reason]


def extra(delta, key: str):
    """A field the SDK's types do not declare (`reasoning_content`, `thinking_blocks`)."""
    return (delta.model_extra or {}).get(key, getattr(delta, key, None))


def stream(fidelity: Fidelity, model: str, **arguments) -> Streamed:
    result = Streamed()
    response = fidelity.client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **arguments)
    result.request_id = response.response.headers["x-request-id"]
    try:
        for chunk in response:
            result.chunks.append(chunk)
    except openai.APIError as error:
        result.error = error
    return result


def data_events(body: bytes) -> list:
    """The data of each SSE event, in order ("[DONE]" as such)."""
    events = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        lines = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if lines:
            events.append("\n".join(lines))
    return events


# MARK: 1. Errors inside a stream body

BARE_ERRORS = {
    "gemini-cancelled": "The first half of the answer and then some",
    "openai-bare-error": "Partial",
}


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", sorted(BARE_ERRORS))
def test_stream_ending_in_a_bare_error_raises_in_the_sdk(fidelity, scenario, seed):
    got = stream(fidelity, name(scenario, seed))
    assert isinstance(got.error, openai.APIError), f"the stream ended without an error: {got.chunks[-1:]}"
    assert got.content == BARE_ERRORS[scenario]
    assert got.finish_reasons == [], "an answer cut short is not a finished one"
    row = fidelity.ledger_row(got.request_id)
    assert row["error_type"], row
    assert row["streamed"] == 1
    assert row["model"] == name(scenario, seed)


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", sorted(BARE_ERRORS))
def test_stream_ending_in_a_bare_error_ends_with_an_error_event_and_no_done(fidelity, scenario, seed):
    public = name(scenario, seed)
    status, headers, body = fidelity.post({"model": public, "messages": MESSAGES, "stream": True})
    assert status == 200
    events = data_events(body)
    assert "[DONE]" not in events, body
    final = json.loads(events[-1])
    assert set(final) == {"error"}, final
    assert final["error"]["message"] and final["error"]["type"], final
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks and all(chunk["model"] == public for chunk in chunks)
    content = "".join(choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"])
    assert content == BARE_ERRORS[scenario]
    row = fidelity.ledger_row(dict(headers)["x-request-id"])
    assert row["error_type"], row


def test_usage_report_counts_the_failed_stream(fidelity):
    got = stream(fidelity, "gemini-cancelled@3")
    assert got.error is not None
    fidelity.ledger_row(got.request_id)
    assert fidelity.usage_by_model()["gemini-cancelled@3"]["requests"] >= 1
    table = subprocess.run([binary(), "usage", "--group-by", "model", "--server", fidelity.proxy, "--token", ADMIN_TOKEN],
                           capture_output=True, text=True, check=True, timeout=60).stdout
    assert "gemini-cancelled@3" in table


# MARK: 2. Gemini 3 streamed function-call arguments

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {
        "location": {"type": "string"}, "days": {"type": "integer"},
        "units": {"type": "object", "properties": {"temperature": {"type": "string"}, "wind": {"type": "string"}}},
        "include_hourly": {"type": "boolean"},
    }, "required": ["location"],
}}}
QUESTIONS_TOOL = {"type": "function", "function": {"name": "ask_questions", "parameters": {
    "type": "object", "properties": {"questions": {"type": "array", "items": {"type": "object", "properties": {
        "text": {"type": "string"}, "options": {"type": "array", "items": {"type": ["string", "null"]}},
    }}}},
}}}
PARTIAL_ARGUMENTS = {
    "gemini-partial-args": ("get_weather", {
        "location": 'Boston, MA "Back Bay"', "days": 3, "units": {"temperature": "celsius", "wind": "km/h"},
        "include_hourly": False,
    }, ""),
    "gemini-partial-args-array": ("ask_questions", {
        "questions": [{"text": "Which city?", "options": ["Paris", "Rome"]}, {"text": "When?", "options": [None]}],
    }, "Asking two questions."),
}


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", sorted(PARTIAL_ARGUMENTS))
def test_partial_arguments_stream_as_one_named_tool_call(fidelity, scenario, seed):
    tool, arguments, content = PARTIAL_ARGUMENTS[scenario]
    got = stream(fidelity, name(scenario, seed), tools=[WEATHER_TOOL, QUESTIONS_TOOL])
    assert got.error is None, got.error
    calls = got.tool_calls
    assert calls, "no tool call"
    assert {call.index for call in calls} == {0}
    assert calls[0].function.name == tool
    assert calls[0].id
    assert all(call.function is None or call.function.name != "" for call in calls), \
        [call.function.name for call in calls]
    assert [call.function.name for call in calls if call.function and call.function.name] == [tool]
    joined = "".join((call.function and call.function.arguments) or "" for call in calls)
    assert json.loads(joined) == arguments
    assert got.content == content
    assert got.finish_reasons[-1] == "tool_calls"


# MARK: 3. Usage on every successful stream

NO_USAGE = {"gemini-blocked-no-usage": ("", "content_filter"), "openai-no-usage": ("Hello there", "stop")}


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", sorted(NO_USAGE))
def test_stream_without_upstream_usage_ends_with_an_estimated_usage_chunk(fidelity, scenario, seed):
    content, finish = NO_USAGE[scenario]
    public = name(scenario, seed)
    got = stream(fidelity, public, stream_options={"include_usage": True})
    assert got.error is None, got.error
    assert got.content == content
    assert got.finish_reasons == [finish]
    last = got.chunks[-1]
    assert last.choices == [], last
    assert last.usage is not None and last.usage.prompt_tokens > 0, last
    assert [chunk for chunk in got.chunks if chunk.usage is not None] == [last]
    assert all(chunk.model == public for chunk in got.chunks)
    row = fidelity.ledger_row(got.request_id)
    assert row["tokens_estimated"] == 1, row
    assert row["prompt_tokens"] == last.usage.prompt_tokens
    assert row["error_type"] is None
    report = fidelity.usage_by_model()[public]
    assert report["estimated_requests"] == report["requests"] >= 1, report


# MARK: 4. Reasoning


def anthropic_thinking() -> tuple[str, str, str]:
    """The recorded thinking, its signature and the answer's text."""
    thinking, signature, text = "", "", ""
    for event in recordings.sse_payloads(replay.cassette_body(upstream.THINKING_CASSETTE)):
        delta = event.get("delta") or {}
        thinking += delta.get("thinking") or ""
        signature += delta.get("signature") or ""
        text += delta.get("text") or ""
    return thinking, signature, text


def gemini_thoughts() -> tuple[str, str]:
    """The built stream's thought summaries and its answer's text."""
    thoughts, text = "", ""
    for event in recordings.sse_payloads(upstream.own("gemini/stream-thoughts.built.sse")):
        for part in recordings.gemini_parts(event):
            if part.get("thought"):
                thoughts += part["text"]
            else:
                text += part.get("text") or ""
    return thoughts, text


def expected_reasoning(scenario: str) -> tuple[str, str]:
    if scenario == "anthropic-thinking":
        thinking, _, text = anthropic_thinking()
        return thinking, text
    return gemini_thoughts()


def assert_shows_reasoning(got: Streamed, scenario: str) -> None:
    assert got.error is None, got.error
    reasoning, content = expected_reasoning(scenario)
    assert got.reasoning == reasoning
    assert got.content == content
    if scenario == "anthropic-thinking":
        _, signature, _ = anthropic_thinking()
        blocks = got.thinking_blocks
        assert len(blocks) == 1, blocks
        assert blocks[0]["type"] == "thinking"
        assert blocks[0]["thinking"] == reasoning
        assert blocks[0]["signature"] and blocks[0]["signature"] == signature


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", EXPOSED)
def test_reasoning_effort_shows_the_reasoning(fidelity, scenario, seed):
    got = stream(fidelity, name(scenario, seed), reasoning_effort="low")
    assert_shows_reasoning(got, scenario)
    sent = fidelity.last_request(name(scenario, seed))
    if scenario == "anthropic-thinking":
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}, sent
        assert sent["max_tokens"] > 1024
    else:
        assert sent["generationConfig"]["thinkingConfig"]["includeThoughts"] is True, sent


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", EXPOSED)
def test_reasoning_stays_hidden_unless_asked(fidelity, scenario, seed):
    got = stream(fidelity, name(scenario, seed))
    assert got.error is None, got.error
    assert all(extra(delta, "reasoning_content") is None for delta in got.deltas)
    assert all(extra(delta, "thinking_blocks") is None for delta in got.deltas)
    _, content = expected_reasoning(scenario)
    assert got.content == content, "the reasoning stays out of the answer too"
    sent = fidelity.last_request(name(scenario, seed))
    if scenario == "anthropic-thinking":
        assert "thinking" not in sent, sent
    else:
        thinking = (sent.get("generationConfig") or {}).get("thinkingConfig") or {}
        assert not thinking.get("includeThoughts"), sent


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", EXPOSED)
def test_reasoning_hidden_in_the_raw_stream_unless_asked(fidelity, scenario, seed):
    status, _, body = fidelity.post({"model": name(scenario, seed), "messages": MESSAGES, "stream": True})
    assert status == 200
    reasoning, _ = expected_reasoning(scenario)
    text = body.decode()
    assert "reasoning_content" not in text and "thinking_blocks" not in text
    assert reasoning[:20] not in text


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("scenario", EXPOSED)
def test_deployment_exposing_reasoning_shows_it_unasked(fidelity, scenario, seed):
    got = stream(fidelity, f"exposed-{name(scenario, seed)}")
    assert_shows_reasoning(got, scenario)
    if scenario == "gemini-thoughts":
        sent = fidelity.last_request(name(scenario, seed))
        assert sent["generationConfig"]["thinkingConfig"]["includeThoughts"] is True, sent


# MARK: 5. Public model names


def hidden_names(config: dict) -> list:
    """What a tenant may never read: the public-name cases' deployment ids and upstream
    models, and every provider id."""
    names = {provider["id"] for provider in config["providers"]}
    for kind in KINDS:
        names.add(NAMING_UPSTREAM[kind])
        names.add(NAMING_ERROR_UPSTREAM[kind])
        names.add(error_deployment(kind))
        names.update(naming_deployment(kind, seed) for seed in SEEDS)
    return sorted(names)


def assert_names_nothing_behind(fidelity: Fidelity, headers: list, body: bytes) -> None:
    text = "\n".join(f"{key}: {value}" for key, value in headers) + "\n" + body.decode()
    # JSON may escape a slash; the tenant reads it all the same.
    readings = [text.lower(), text.replace("\\/", "/").lower()]
    for hidden in hidden_names(fidelity.config):
        for reading in readings:
            assert hidden.lower() not in reading, f"{hidden!r} reached the tenant:\n{text}"


@pytest.mark.parametrize("kind", KINDS)
def test_whole_answer_names_only_the_public_model(fidelity, kind):
    public = naming_public(kind)
    status, headers, body = fidelity.post({"model": public, "messages": MESSAGES})
    assert status == 200, body
    assert json.loads(body)["model"] == public
    assert_names_nothing_behind(fidelity, headers, body)
    assert fidelity.client.chat.completions.create(model=public, messages=MESSAGES).model == public


@pytest.mark.parametrize("seed", SEEDS, ids=seed_id)
@pytest.mark.parametrize("kind", KINDS)
def test_streamed_answer_names_only_the_public_model(fidelity, kind, seed):
    public = naming_public(kind, seed)
    status, headers, body = fidelity.post({"model": public, "messages": MESSAGES, "stream": True,
                                           "stream_options": {"include_usage": True}})
    assert status == 200, body
    events = data_events(body)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks
    assert [chunk.get("model") for chunk in chunks] == [public] * len(chunks)
    assert chunks[-1]["usage"] is not None
    assert_names_nothing_behind(fidelity, headers, body)


@pytest.mark.parametrize("stream_asked", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_upstream_error_names_only_the_public_model(fidelity, kind, stream_asked):
    public = error_public(kind)
    status, headers, body = fidelity.post({"model": public, "messages": MESSAGES, "stream": stream_asked})
    assert status == (404 if kind == "gemini" else 400), body
    error = json.loads(body)["error"]
    assert public in error["message"], error
    for provider_word in ["openai", "anthropic", "platform.openai.com", "docs.anthropic.com", "google"]:
        assert provider_word not in body.decode().lower(), f"{provider_word!r} in {error}"
    assert_names_nothing_behind(fidelity, headers, body)
    with pytest.raises(openai.APIStatusError) as raised:
        response = fidelity.client.chat.completions.create(model=public, messages=MESSAGES, stream=stream_asked)
        if stream_asked:
            list(response)
    assert raised.value.status_code == status
    assert public in str(raised.value)


def test_model_list_names_only_public_models(fidelity):
    response = httpx.get(fidelity.proxy + "/v1/models", headers={"authorization": f"Bearer {fidelity.key}"}, timeout=10)
    assert response.status_code == 200
    listed = {model["id"] for model in response.json()["data"]}
    assert {naming_public(kind) for kind in KINDS} <= listed
    assert_names_nothing_behind(fidelity, response.headers.multi_items(), response.content)
