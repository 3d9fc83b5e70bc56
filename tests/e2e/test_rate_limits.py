"""Rate limits answered so that SDKs retry well: one `switchyard serve` (keeping key
health in process, or in a redis-server) in front of a scripted OpenAI-compatible
provider, with one key on the deployment, so nothing else can take a rate-limited
request. The official openai SDK is the client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ADMIN_TOKEN, BCRYPT_COST, REPO, binary, free_port, stop, wait_for
from scripted_provider import ScriptedProvider
from test_key_pools import KEY_A, KEY_B, Cluster, ask
from test_shared_limits import start_redis


@contextmanager
def serving(shared: bool, environment_key: str | None = None):
    """One replica in front of a scripted provider whose deployment backs `chat-pooled`;
    its only key is KEY_A, added by an operator, or `environment_key` from a variable."""
    directory = Path(tempfile.mkdtemp(prefix="switchyard-rate-limits-"))
    provider = ScriptedProvider()
    provider_port = provider.start()
    redis_port = free_port()
    redis = start_redis(redis_port, directory) if shared else None
    config = json.loads((REPO / "providers.json").read_text())
    config["engine_pools"][0]["replicas"] = [{"url": f"http://127.0.0.1:{free_port()}/v1", "slots": 8}]
    scripted = {"id": "scripted", "kind": "openai", "base_url": f"http://127.0.0.1:{provider_port}/v1"}
    if environment_key:
        scripted["api_key_env"] = "SCRIPTED_RATE_LIMIT_KEY"
    config["providers"].append(scripted)
    config["deployments"].append({"id": "scripted-mini", "provider": "scripted", "model": "gpt-4o-mini"})
    config["models"].append({"name": "chat-pooled", "routes": ["scripted-mini"]})
    config["prices"]["scripted-mini"] = {"input_per_million": 150000, "output_per_million": 600000}
    (directory / "providers.json").write_text(json.dumps(config))
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
    environment.update({"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_MASTER_KEY": "ab" * 32,
                        "SWITCHYARD_BCRYPT_COST": BCRYPT_COST})
    if environment_key:
        environment["SCRIPTED_RATE_LIMIT_KEY"] = environment_key
    process = subprocess.Popen(
        [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(directory / "switchyard.sqlite"),
         "--port", str(port), "--grace-period", "20"]
        + (["--redis", f"redis://127.0.0.1:{redis_port}/0"] if shared else []),
        env=environment, stdout=open(directory / "serve-0.out", "w"), stderr=open(directory / "serve-0.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/health", process)
        running = Cluster(directory, provider, [url], [process])
        if not environment_key:
            running.add_key(KEY_A, "only")
        yield running
    finally:
        stop(process)
        if redis:
            stop(redis)
        provider.stop()
        logs = (directory / "serve-0.log").read_text() + (directory / "serve-0.out").read_text()
        shutil.rmtree(directory, ignore_errors=True)
        for secret in (KEY_A, environment_key):
            assert not secret or secret not in logs, "a provider key reached the logs"


@pytest.fixture(params=["in-process", "redis"])
def single(request):
    with serving(request.param == "redis") as running:
        yield running


def statuses(single: Cluster) -> list[int]:
    return [hit.status for hit in single.provider.hits_for(KEY_A)]


def post(single: Cluster, tenant: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(single.urls[0] + "/v1/chat/completions", headers={"authorization": f"Bearer {tenant}"},
                      json={"model": "chat-pooled", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
                      timeout=timeout)


def retry_after(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


# MARK: A short delay: Switchyard waits it out and retries the same key


def test_a_short_retry_after_is_waited_out_on_the_same_key_without_sdk_retries(single):
    single.provider.script(KEY_A, "429", retry_after=1, times=2)
    client = single.client(single.tenant_key())  # max_retries=0: Switchyard alone retries
    assert ask(client) == "Hello there"
    assert statuses(single) == [429, 429, 200]


def test_a_short_retry_after_succeeds_for_the_sdk_with_its_own_retries(single):
    tenant = single.tenant_key()
    client = openai.OpenAI(base_url=single.urls[0] + "/v1", api_key=tenant, timeout=30)  # the SDK's default retries
    single.provider.script(KEY_A, "429", retry_after=1, times=2)
    assert ask(client) == "Hello there"
    assert statuses(single) == [429, 429, 200]
    # More 429s than Switchyard's four attempts: its 429 carries retry-after, and the SDK
    # retries after it.
    single.provider.script(KEY_A, "429", retry_after=1, times=5)
    assert ask(client) == "Hello there"
    assert statuses(single)[3:] == [429, 429, 429, 429, 429, 200]


def test_a_stream_is_retried_the_same_way_before_its_first_byte(single):
    single.provider.script(KEY_A, "429", retry_after=1, times=2)
    assert ask(single.client(single.tenant_key()), stream=True) == "Hello there"
    assert statuses(single) == [429, 429, 200]


def test_retry_after_ms_and_x_should_retry_true_are_waited_for_but_not_x_should_retry_false(single):
    tenant = single.tenant_key()
    single.provider.script(KEY_A, "429", retry_after=None, retry_after_ms=500, times=1)
    assert ask(single.client(tenant)) == "Hello there"
    assert statuses(single) == [429, 200]
    # No delay named, but a retry invited: the key's own first cooldown, 1 s.
    single.provider.script(KEY_A, "429", retry_after=None, should_retry=True, times=1)
    assert ask(single.client(tenant)) == "Hello there"
    assert statuses(single) == [429, 200, 429, 200]
    # The provider says not to retry: answered at once, with its delay.
    single.provider.script(KEY_A, "429", retry_after=1, should_retry=False, times=1)
    refused = post(single, tenant)
    assert refused.status_code == 429 and retry_after(refused) == 1
    assert statuses(single) == [429, 200, 429, 200, 429]


# MARK: A long delay: answered 429 with retry-after, never 503


def test_a_long_retry_after_is_answered_as_a_rate_limit_with_retry_after(single):
    single.provider.script(KEY_A, "429", retry_after=20)
    tenant = single.tenant_key()
    with pytest.raises(openai.RateLimitError) as raised:
        ask(single.client(tenant))
    assert 19 <= int(raised.value.response.headers["retry-after"]) <= 20
    assert raised.value.code == "rate_limit_exceeded"
    assert statuses(single) == [429], "a 20 s delay is not waited for"

    # While the key cools down nothing is sent upstream, and the answer is still a rate
    # limit, with the rest of the cooldown.
    with pytest.raises(openai.RateLimitError) as again:
        ask(single.client(tenant))
    assert 0 < int(again.value.response.headers["retry-after"]) <= 20
    cooling = post(single, tenant)
    assert cooling.status_code == 429
    assert cooling.json()["error"]["code"] == "rate_limit_exceeded"
    assert cooling.json()["error"]["type"] == "rate_limit_error"
    assert 0 < retry_after(cooling) <= 20
    assert statuses(single) == [429]


def test_a_429_without_retry_after_cools_the_key_for_a_second_that_doubles_until_a_success(single):
    tenant = single.tenant_key()

    def sent() -> httpx.Response:
        """The next answer to a request that reached the provider; those refused while the
        key cools down are rate limits too, with the rest of the cooldown."""
        before = len(statuses(single))
        for _ in range(200):
            response = post(single, tenant)
            if len(statuses(single)) > before:
                return response
            assert response.status_code == 429 and retry_after(response) >= 1
            time.sleep(0.1)
        raise AssertionError("no request reached the provider")

    single.provider.script(KEY_A, "429", retry_after=None)
    for expected in (1, 2, 4):
        response = sent()
        assert response.status_code == 429
        assert retry_after(response) == expected
    single.provider.script(KEY_A, "ok")
    assert sent().status_code == 200
    time.sleep(0.3)  # a success reaches a shared store a moment after its answer
    single.provider.script(KEY_A, "429", retry_after=None)
    assert retry_after(sent()) == 1, "a success starts the default cooldown afresh"


# MARK: The wait gives way to the client and to the server


def test_a_client_that_leaves_during_the_wait_is_not_retried_for(single):
    single.provider.script(KEY_A, "429", retry_after=2, times=1)
    with pytest.raises(httpx.TimeoutException):
        post(single, single.tenant_key(), timeout=0.5)
    time.sleep(3)
    assert statuses(single) == [429]


def test_a_shutdown_during_the_wait_answers_the_rate_limit_at_once(single):
    single.provider.script(KEY_A, "429", retry_after=2, times=1)
    tenant = single.tenant_key()
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(post(single, tenant)))
    request.start()
    deadline = time.time() + 10
    while time.time() < deadline and not statuses(single):
        time.sleep(0.01)
    assert statuses(single) == [429]
    single.processes[0].send_signal(signal.SIGTERM)
    request.join(timeout=30)
    assert answers, "the request was not answered"
    assert answers[0].status_code == 429 and retry_after(answers[0]) >= 1
    assert statuses(single) == [429], "no retry once shutdown began"
    single.processes[0].wait(timeout=30)


# MARK: Not a rate limit: 503


def test_a_model_whose_every_key_is_disabled_is_answered_503_not_429():
    with serving(shared=False, environment_key=KEY_B) as single:
        single.provider.script(KEY_B, "401")
        tenant = single.tenant_key()
        rejected = post(single, tenant)
        assert rejected.status_code == 401 and rejected.json()["error"]["code"] == "upstream_auth_failed"
        # The key from the variable stays in the catalogue, disabled in the pool: no key
        # will ever take the request without an operator, which is no rate limit.
        unavailable = post(single, tenant)
        assert unavailable.status_code == 503
        assert unavailable.json()["error"]["code"] == "provider_capacity_exhausted"
        assert "retry-after" not in unavailable.headers
        assert [hit.status for hit in single.provider.hits_for(KEY_B)] == [401]
