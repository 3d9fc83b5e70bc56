"""Recorded OpenAI, Anthropic and Gemini traffic, replayed byte for byte (whole and
re-chunked at pseudo-random boundaries), through Switchyard to the official openai SDK:
the SDK must see exactly what each recording holds, in OpenAI's format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx
import openai
import pytest

import recordings
import replay_upstream as replay
from conftest import ADMIN_TOKEN, BCRYPT_COST, binary, free_port, stop, tenant_key, wait_for

SEEDS = ["", "1", "2", "3"]
STREAMS = {
    **{name: "anthropic" for name in replay.ANTHROPIC_STREAMS},
    **{name: "gemini" for name in replay.GEMINI_STREAMS},
    **{name: "openai" for name in replay.OPENAI_STREAMS},
    **{name: "azure" for name in replay.AZURE_STREAMS},
    **{name: "engine" for name in replay.ENGINE_STREAMS},
}
WHOLE = {
    **{name: "anthropic" for name in replay.ANTHROPIC_JSON}, **{name: "gemini" for name in replay.GEMINI_JSON},
    **{name: "openai" for name in replay.OPENAI_JSON}, **{name: "engine" for name in replay.ENGINE_JSON},
}
ERRORS = {**{name: "anthropic" for name in replay.ANTHROPIC_ERRORS}, **{name: "gemini" for name in replay.GEMINI_ERRORS}}


def upstream_model(name: str, seed: str = "") -> str:
    return f"{name}@{seed}" if seed else name


@pytest.fixture(scope="module")
def switchyard():
    server, replay_port = replay.start()
    directory = Path(tempfile.mkdtemp(prefix="switchyard-replay-"))
    base = f"http://127.0.0.1:{replay_port}"
    providers = [
        {"id": "replay-openai", "kind": "openai", "base_url": f"{base}/v1", "api_key_env": "REPLAY_OPENAI_KEY"},
        {"id": "replay-anthropic", "kind": "anthropic", "base_url": base, "api_key_env": "REPLAY_ANTHROPIC_KEY"},
        {"id": "replay-gemini", "kind": "gemini", "base_url": f"{base}/v1beta", "api_key_env": "REPLAY_GEMINI_KEY"},
        {"id": "replay-azure", "kind": "azure-openai", "base_url": base, "api_key_env": "REPLAY_AZURE_KEY", "api_version": "2024-10-21"},
        {"id": "replay-engine", "kind": "engine", "engine_pool": "replay-pool"},
    ]
    names = [upstream_model(n, s) for n in STREAMS for s in SEEDS] + list(WHOLE) + list(ERRORS)
    provider_of = {**STREAMS, **WHOLE, **ERRORS}
    deployments = [{"id": name, "provider": f"replay-{provider_of[name.partition('@')[0]]}", "model": name} for name in names]
    config = {
        "providers": providers,
        "deployments": deployments,
        "engine_pools": [{"id": "replay-pool", "replicas": [{"url": f"{base}/engine/v1", "slots": 64}]}],
        "models": [{"name": name, "routes": [name]} for name in names],
        "tiers": [{"name": "enterprise", "priority": 100}],
    }
    (directory / "providers.json").write_text(json.dumps(config))
    port = free_port()
    environment = {**os.environ, "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST,
                   "REPLAY_OPENAI_KEY": "sk-replay-openai",
                   "REPLAY_ANTHROPIC_KEY": "sk-ant-replay", "REPLAY_GEMINI_KEY": "gemini-replay-key", "REPLAY_AZURE_KEY": "azure-replay-key"}
    process = subprocess.Popen(
        [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(directory / "db.sqlite"),
         "--port", str(port)],
        env=environment, stdout=open(directory / "serve.out", "w"), stderr=open(directory / "serve.log", "w"),
    )
    proxy = f"http://127.0.0.1:{port}"
    wait_for(proxy + "/health", process)
    tenant = json.loads(subprocess.run(
        [binary(), "tenant", "create", "--name", "replay", "--tier", "enterprise", "--json", "--server", proxy, "--token", ADMIN_TOKEN],
        capture_output=True, text=True, check=True).stdout)
    key = tenant_key(proxy, tenant["id"], "replay")["key"]
    client = openai.OpenAI(base_url=proxy + "/v1", api_key=key, max_retries=0, timeout=30)
    client.switchyard_url = proxy
    try:
        yield client
    finally:
        stop(process)
        server.shutdown()
        shutil.rmtree(directory, ignore_errors=True)


MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


def expected_stream(name: str) -> dict:
    provider, body = STREAMS[name], None
    if provider == "anthropic":
        return recordings.expected_anthropic_stream(replay.ANTHROPIC_STREAMS[name]())
    if provider == "gemini":
        return recordings.expected_gemini(recordings.sse_payloads(replay.GEMINI_STREAMS[name]()), stream=True)
    if provider == "azure":
        return recordings.expected_openai_stream(replay.AZURE_STREAMS[name]())
    if provider == "engine":
        return recordings.engine_normalised(recordings.expected_openai_stream(replay.ENGINE_STREAMS[name]()))
    return recordings.expected_openai_stream(replay.OPENAI_STREAMS[name]())


def collect(stream) -> dict:
    text, calls, finish, usage = "", {}, None, None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
                entry["name"] += (call.function and call.function.name) or ""
                entry["arguments"] += (call.function and call.function.arguments) or ""
            finish = choice.finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    ordered = [calls[i] for i in sorted(calls)]
    return {
        "content": text, "tools": [c["name"] for c in ordered],
        "arguments": [json.loads(c["arguments"] or "{}") for c in ordered], "finish": finish,
        "usage": None if usage is None else {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "cached_tokens": (usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0) or 0,
        },
    }


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s or 'whole'}")
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_recorded_stream_through_switchyard(switchyard, name, seed):
    expected = expected_stream(name)
    got = collect(switchyard.chat.completions.create(
        model=upstream_model(name, seed), messages=MESSAGES, stream=True, stream_options={"include_usage": True},
    ))
    assert got["content"] == expected["content"]
    assert got["tools"] == expected["tools"]
    assert got["arguments"] == expected["arguments"]
    assert got["finish"] == expected["finish"]
    if expected["usage"] is not None:
        assert got["usage"] == expected["usage"]


@pytest.mark.parametrize("name", sorted(n for n, p in STREAMS.items() if p in ("anthropic", "gemini")))
def test_translated_stream_hides_usage_unless_asked(switchyard, name):
    chunks = list(switchyard.chat.completions.create(model=name, messages=MESSAGES, stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == expected_stream(name)["finish"]


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_recorded_answer_through_switchyard(switchyard, name):
    provider = WHOLE[name]
    if provider == "anthropic":
        expected = recordings.expected_anthropic_json(replay.ANTHROPIC_JSON[name]())
    elif provider == "gemini":
        expected = recordings.expected_gemini([json.loads(replay.GEMINI_JSON[name]())])
    elif provider == "openai":
        expected = recordings.expected_openai_json(replay.OPENAI_JSON[name]())
    else:
        expected = recordings.engine_normalised(recordings.expected_openai_json(replay.ENGINE_JSON[name]()))
    completion = switchyard.chat.completions.create(model=name, messages=MESSAGES)
    message = completion.choices[0].message
    assert message.content == expected["content"]
    assert [call.function.name for call in message.tool_calls or []] == expected["tools"]
    assert [json.loads(call.function.arguments) for call in message.tool_calls or []] == expected["arguments"]
    assert completion.choices[0].finish_reason == expected["finish"]
    assert completion.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert completion.usage.completion_tokens == expected["usage"]["completion_tokens"]


def restore_keys(switchyard) -> None:
    """Puts every provider's one key back in service. A replayed 429 cools the key down
    and a replayed 401 disables it, as they would a real key; each error case starts
    from a healthy pool, as an operator's `provider-key enable` leaves it."""
    for provider in ["replay-openai", "replay-anthropic", "replay-gemini", "replay-azure"]:
        response = httpx.post(f"{switchyard.switchyard_url}/admin/v1/provider-keys/env:{provider}/enable",
                              headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("name, exception", [
    ("anthropic-401", openai.AuthenticationError),
    ("anthropic-403", openai.PermissionDeniedError),
    ("anthropic-404", openai.NotFoundError),
    ("anthropic-429", openai.RateLimitError),
    ("anthropic-529", openai.InternalServerError),
    ("anthropic-500", openai.InternalServerError),
    ("anthropic-400", openai.BadRequestError),
    ("gemini-400-key", openai.AuthenticationError),
    ("gemini-404", openai.NotFoundError),
    ("gemini-429", openai.RateLimitError),
    ("gemini-500", openai.InternalServerError),
])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_translated_errors_raise_the_sdks_exceptions(switchyard, name, exception, stream):
    restore_keys(switchyard)
    with pytest.raises(exception) as raised:
        response = switchyard.chat.completions.create(model=name, messages=MESSAGES, stream=stream)
        if stream:
            list(response)
    # Nothing of a provider key may come back.
    text = str(raised.value)
    for secret in ["sk-ant-replay", "gemini-replay-key", "sk-replay-openai", "azure-replay-key"]:
        assert secret not in text


def test_provider_capacity_headers_show_in_metrics(switchyard):
    recording = "anthropic/recorded/anthropic-sdk-python.200-with-ratelimit-headers.json"
    headers = dict(replay.recorded_headers(recording, 0))
    restore_keys(switchyard)
    switchyard.chat.completions.create(model="anthropic-rl-text", messages=MESSAGES)
    metrics = httpx.get(switchyard.switchyard_url + "/metrics").text
    for window, prefix in [("requests", "requests"), ("tokens", "tokens"), ("input_tokens", "input-tokens"), ("output_tokens", "output-tokens")]:
        remaining = headers[f"anthropic-ratelimit-{prefix}-remaining"]
        limit = headers[f"anthropic-ratelimit-{prefix}-limit"]
        labels = f'deployment="anthropic-rl-text",window="{window}"'
        assert f"switchyard_upstream_ratelimit_remaining{{{labels}}} {remaining}" in metrics
        assert f"switchyard_upstream_ratelimit_limit{{{labels}}} {limit}" in metrics


def test_every_transcript_is_replayed():
    """Each recorded transcript is served by the replay upstream or named in
    NOT_REPLAYED with its reason."""
    import inspect

    # Only the serving code counts, not the table of exclusions below it.
    source = inspect.getsource(replay).split("NOT_REPLAYED = {")[0]
    folders = ["openai", "anthropic", "gemini", "local-engines"]
    transcripts = sorted(
        str(path.relative_to(replay.FIXTURES)) for folder in folders for path in (replay.FIXTURES / folder).rglob("*")
        if path.is_file() and path.suffix in {".sse", ".json", ".txt", ".yaml", ".http"}
    )
    assert len(transcripts) > 40
    missing = [path for path in transcripts
               if path not in replay.NOT_REPLAYED and Path(path).name not in source and path not in source]
    assert missing == []
