"""End to end: the official openai Python SDK against a running `switchyard serve`,
exactly as a tenant's application would use it."""

from __future__ import annotations

import sqlite3
import time

import openai
import pytest

from conftest import ADMIN_TOKEN, binary, start_deployment, stop, tenant_key


def make_tenant(deployment, name: str, tier: str = "enterprise") -> tuple[str, str, str]:
    tenant = deployment.cli_json("tenant", "create", "--name", name, "--tier", tier)
    key = tenant_key(deployment, tenant["id"], "e2e-app")
    assert key["key"].startswith("sk-sy-")
    return tenant["id"], key["id"], key["key"]


def client(deployment, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=deployment.proxy + "/v1", api_key=key, max_retries=0, timeout=30)


MESSAGES = [{"role": "user", "content": "Tell me about model proxies"}]


def test_chat_streaming_errors_and_exact_usage(deployment):
    tenant_id, _, key = make_tenant(deployment, "e2e-acme")
    sdk = client(deployment, key)

    completion = sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=12)
    content = completion.choices[0].message.content
    assert content
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 12

    stream = sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=12, stream=True)
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == content
    assert all(c.usage is None for c in chunks), "usage was not asked for"
    assert chunks[-1].choices[0].finish_reason == "length"

    with_usage = list(sdk.chat.completions.create(
        model="chat-small", messages=MESSAGES, max_tokens=5, stream=True, stream_options={"include_usage": True},
    ))
    assert with_usage[-1].choices == []
    streamed_usage = with_usage[-1].usage
    assert streamed_usage.completion_tokens == 5

    embedding = sdk.embeddings.create(model="embed-small", input=["switchyard", "routes requests"])
    assert len(embedding.data) == 2

    models = [m.id for m in sdk.models.list()]
    assert "chat-small" in models and "embed-small" in models
    assert "chat-large" not in models, "providers without keys are not offered"

    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert not_found.value.code == "model_not_found"

    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=-3)

    # The ledger shows exactly what the upstream reported, within 10 seconds.
    expected_prompt = completion.usage.prompt_tokens * 2 + streamed_usage.prompt_tokens
    expected_completion = completion.usage.completion_tokens * 2 + streamed_usage.completion_tokens
    deadline = time.monotonic() + 10
    rows = []
    while time.monotonic() < deadline:
        report = deployment.admin(f"/admin/v1/usage?tenant={tenant_id}&group_by=model")
        rows = {row["group"]: row for row in report["data"]}
        if rows.get("chat-small", {}).get("requests") == 3 and "embed-small" in rows:
            break
        time.sleep(0.1)
    chat = rows["chat-small"]
    assert chat["requests"] == 3
    assert chat["prompt_tokens"] == expected_prompt
    assert chat["completion_tokens"] == expected_completion
    assert chat["estimated_requests"] == 0
    assert chat["cost_micros"] > 0
    assert rows["embed-small"]["prompt_tokens"] == embedding.usage.prompt_tokens

    # The CLI shows the same report as a table.
    table = deployment.cli("usage", "--tenant", tenant_id).stdout
    assert "chat-small" in table and str(expected_prompt) in table


def test_revoked_key_raises_authentication_error(deployment):
    tenant_id, key_id, key = make_tenant(deployment, "e2e-revoked")
    sdk = client(deployment, key)
    assert sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=2).choices
    revoked = deployment.cli_json("key", "revoke", key_id)
    assert revoked["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError) as failure:
        sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=2)
    assert failure.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(deployment, "sk-sy-" + "x" * 43).models.list()
    listing = deployment.cli("key", "list", "--tenant", tenant_id).stdout
    assert "revoked" in listing and key not in listing


def test_tenant_scoped_base_url(deployment):
    tenant_id, _, key = make_tenant(deployment, "e2e-scoped")
    scoped = openai.OpenAI(base_url=f"{deployment.proxy}/tenants/{tenant_id}/v1", api_key=key, max_retries=0)
    assert scoped.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=2).choices
    other_id, _, _ = make_tenant(deployment, "e2e-other")
    foreign = openai.OpenAI(base_url=f"{deployment.proxy}/tenants/{other_id}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        foreign.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=2)


def test_cli_reports_errors_plainly(deployment):
    result = deployment.cli("tenant", "create", "--name", "bad-tier", "--tier", "platinum", check=False)
    assert result.returncode == 1
    assert "Unknown tier 'platinum'" in result.stderr
    tenants = deployment.cli("tenant", "list").stdout
    assert "NAME" in tenants and "TIER" in tenants


def test_sigterm_lets_in_flight_streams_finish_and_flushes_the_ledger(slow_deployment):
    _, _, key = make_tenant(slow_deployment, "e2e-shutdown")
    sdk = client(slow_deployment, key)
    # 40 tokens at 25 tokens/s: about 1.6 s of streaming.
    stream = sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=40, stream=True)
    iterator = iter(stream)
    first = next(iterator)
    request_id = stream.response.headers["x-request-id"]
    slow_deployment.serve.terminate()
    rest = list(iterator)
    chunks = [first, *rest]
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(content.split()) == 40, "the in-flight stream ran to its end"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert slow_deployment.serve.wait(timeout=30) == 0
    with sqlite3.connect(slow_deployment.database) as db:
        row = db.execute(
            "SELECT completion_tokens, client_aborted, status FROM usage_events WHERE request_id = ?", (request_id,)
        ).fetchone()
    assert row == (40, 0, 200), "the ledger was flushed before exit"


def test_configuration_error_names_the_path_and_exits_2(tmp_path):
    bad = tmp_path / "providers.json"
    bad.write_text('{"providers":[{"id":"x","kind":"opnai","base_url":"https://a"}],"deployments":[],"models":[],"tiers":[]}')
    import subprocess

    result = subprocess.run(
        [binary(), "serve", "--config", str(bad), "--db", str(tmp_path / "db.sqlite"), "--port", "0"],
        capture_output=True, text=True, timeout=60, env={"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "$.providers[0].kind" in result.stderr
    assert "opnai" in result.stderr


def test_tenant_over_its_limit_gets_rate_limit_error(deployment):
    _, _, key = make_tenant(deployment, "e2e-limited", tier="e2e-limited")
    sdk = client(deployment, key)
    first = sdk.chat.completions.with_raw_response.create(model="chat-small", messages=MESSAGES, max_tokens=2)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=2)
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=2)
    assert refused.value.code == "rate_limit_exceeded"
    assert int(refused.value.response.headers["retry-after"]) >= 1
