"""What operators plug in: serve's JSON log lines (one access line per inference request,
with the ledger's figures, and never a secret, prompt or completion, even at debug)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ADMIN_TOKEN, ORG_ADMIN_PASSWORD, bearer, invite_user, running_deployment, stop

PROVIDER_SECRET = "sk-provider-secret-" + uuid.uuid4().hex


@pytest.fixture()
def logged():
    with running_deployment("switchyard-e2e-logs-", serve_args=("--log-format", "json"),
                            environment_overrides={"SWITCHYARD_LOG_LEVEL": "debug"}) as running:
        yield running


def lines_of(directory: Path) -> list[dict]:
    """Every line serve wrote on standard output, each of which must be a JSON object."""
    lines = []
    for number, line in enumerate((directory / "serve.out").read_text().splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"serve.out line {number} is not JSON: {line[:200]}")
    return lines


def test_every_inference_request_has_one_json_access_line_and_no_secret_is_logged(logged):
    tenant = logged.cli_json("tenant", "create", "--name", "logged", "--tier", "enterprise")
    admin = invite_user(logged, tenant["id"], "org_admin")
    key = httpx.post(logged.proxy + f"/admin/v1/tenants/{tenant['id']}/keys", json={"name": "app"},
                     headers=bearer(admin["token"]), timeout=30).json()["key"]
    added = httpx.post(logged.proxy + "/admin/v1/provider-keys", headers=bearer(ADMIN_TOKEN), timeout=30,
                       json={"provider": "anthropic", "key": PROVIDER_SECRET, "label": "logged"})
    assert added.status_code == 201, added.text
    prompt = f"the-prompt-{uuid.uuid4().hex}"
    client = openai.OpenAI(base_url=logged.proxy + "/v1", api_key=key, max_retries=0)

    asked: dict[str, dict] = {}
    whole = client.chat.completions.with_raw_response.create(
        model="chat-small", messages=[{"role": "user", "content": prompt}], max_tokens=12)
    completion = whole.parse().choices[0].message.content
    asked[whole.headers["x-request-id"]] = {"status": 200}
    with client.chat.completions.with_streaming_response.create(
            model="chat-small", messages=[{"role": "user", "content": prompt + " streamed"}], max_tokens=6,
            stream=True) as streamed:
        for _ in streamed.iter_lines():
            pass
        asked[streamed.headers["x-request-id"]] = {"status": 200}
    embedded = client.embeddings.with_raw_response.create(model="embed-small", input=prompt)
    asked[embedded.headers["x-request-id"]] = {"status": 200}
    unknown = httpx.post(logged.proxy + "/v1/chat/completions", headers=bearer(key), timeout=30,
                         json={"model": "no-such-model", "messages": [{"role": "user", "content": prompt}]})
    assert unknown.status_code == 404
    asked[unknown.headers["x-request-id"]] = {"status": 404, "tenant": True}
    refused = httpx.post(logged.proxy + "/v1/chat/completions", headers=bearer("sk-sy-" + "x" * 43), timeout=30,
                         json={"model": "chat-small", "messages": [{"role": "user", "content": prompt}]})
    assert refused.status_code == 401
    asked[refused.headers["x-request-id"]] = {"status": 401, "tenant": False}
    events = {}
    for request_id, expected in asked.items():
        if expected["status"] == 200:
            events[request_id] = wait_for_event(logged, request_id)
    stop(logged.serve)

    lines = lines_of(logged.directory)
    assert all({"ts", "level", "msg"} <= line.keys() for line in lines)
    assert any(line["level"] == "debug" for line in lines), "serve did not log at debug"
    access = [line for line in lines if line["msg"] == "request"]
    assert sorted(line["request_id"] for line in access) == sorted(asked), "one access line per request"
    for line in access:
        expected = asked[line["request_id"]]
        assert line["level"] == "info" and line["status"] == expected["status"]
        assert isinstance(line["duration_ms"], int)
        if expected["status"] == 200:
            event = events[line["request_id"]]
            assert line["tenant_id"] == tenant["id"] and line["key_id"] == event["tenant_key_id"]
            assert line["user_id"] == admin["user"]["id"]
            assert line["prompt_tokens"] == event["prompt_tokens"]
            assert line["completion_tokens"] == event["completion_tokens"]
            assert line["deployment"] == event["deployment"] and line["model"] == event["model"]
            assert isinstance(line["ttft_ms"], int) and isinstance(line["queue_ms"], int)
        else:
            assert "error_type" in line and line["prompt_tokens"] == 0
            assert ("tenant_id" in line) == expected["tenant"]

    # Nothing a client or operator handed over is in the output, at any level.
    text = (logged.directory / "serve.out").read_text() + (logged.directory / "serve.log").read_text()
    for secret in (key, PROVIDER_SECRET, ORG_ADMIN_PASSWORD, admin["token"], admin["csrf_token"], prompt, completion):
        assert secret not in text, f"the logs show {secret[:12]}…"


def wait_for_event(deployment, request_id: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        answer = httpx.get(deployment.proxy + f"/admin/v1/usage/events/{request_id}", headers=bearer(ADMIN_TOKEN), timeout=10)
        if answer.status_code == 200:
            return answer.json()
        assert time.monotonic() < deadline, f"{request_id} never reached the ledger"
        time.sleep(0.1)


def test_the_access_log_can_be_turned_off():
    with running_deployment("switchyard-e2e-nolog-", serve_args=("--log-format", "json", "--access-log", "off")) as running:
        tenant = running.cli_json("tenant", "create", "--name", "quiet", "--tier", "enterprise")
        key = running.tenant_key(tenant["id"])["key"]
        client = openai.OpenAI(base_url=running.proxy + "/v1", api_key=key, max_retries=0)
        client.chat.completions.create(model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
        stop(running.serve)
        lines = lines_of(running.directory)
        assert lines and not [line for line in lines if line["msg"] == "request"]
