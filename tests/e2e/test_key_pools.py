"""Provider key pools end to end: two `switchyard serve` replicas sharing one
redis-server and one ledger (and, again, one replica keeping key health in process), in
front of a scripted OpenAI-compatible provider whose answer depends on the key presented. The official openai SDK is the client, with its own
retries off, so every error Switchyard lets through would show."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ADMIN_TOKEN, BCRYPT_COST, REPO, binary, free_port, stop, tenant_key, wait_for
from scripted_provider import ScriptedProvider
from test_shared_limits import start_redis

KEY_A = "sk-scripted-aaaaaaaaaaaaaaaaaaaaAAAA"
KEY_B = "sk-scripted-bbbbbbbbbbbbbbbbbbbbBBBB"
KEY_C = "sk-scripted-ccccccccccccccccccccCCCC"


class Cluster:
    def __init__(self, directory: Path, provider: ScriptedProvider, urls: list[str], processes: list[subprocess.Popen]):
        self.directory, self.provider, self.urls, self.processes = directory, provider, urls, processes

    def cli(self, *args: str, url: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary(), *args, "--server", url or self.urls[0], "--token", ADMIN_TOKEN],
            input=stdin, capture_output=True, text=True, timeout=60,
        )

    def add_key(self, secret: str, label: str, **options: str) -> dict:
        args = ["provider-key", "add", "--provider", "scripted", "--label", label, "--json"]
        for name, value in options.items():
            args += [f"--{name}", value]
        result = self.cli(*args, stdin=secret + "\n")
        assert result.returncode == 0, result.stderr
        assert secret not in result.stdout
        self.in_step()
        return json.loads(result.stdout)

    def in_step(self, timeout: float = 20) -> None:
        """Waits until every replica has loaded the latest key catalogue (each checks the
        ledger once a second)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            lists = [httpx.get(url + "/admin/v1/provider-keys", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()
                     for url in self.urls]
            if all(listed["loaded_revision"] == listed["revision"] for listed in lists):
                return
            time.sleep(0.05)
        raise AssertionError("a replica did not load the key catalogue")

    def keys(self, url: str | None = None) -> dict[str, dict]:
        result = self.cli("provider-key", "list", "--json", url=url)
        assert result.returncode == 0, result.stderr
        return {key["label"]: key for key in json.loads(result.stdout)["data"]}

    def tenant(self, tier: str = "enterprise") -> tuple[str, str]:
        """A new tenant's id and key."""
        headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        tenant = httpx.post(self.urls[0] + "/admin/v1/tenants", json={"name": f"t-{time.monotonic_ns()}", "tier": tier},
                            headers=headers).json()
        key = tenant_key(self.urls[0], tenant["id"])["key"]
        return tenant["id"], key

    def tenant_key(self, tier: str = "enterprise") -> str:
        return self.tenant(tier)[1]

    def client(self, key: str, replica: int = 0) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.urls[replica] + "/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture(params=["redis", "in-process"])
def cluster(request):
    """Two replicas sharing Redis, or (without Redis) one replica reached twice."""
    shared = request.param == "redis"
    directory = Path(tempfile.mkdtemp(prefix="switchyard-keys-"))
    provider = ScriptedProvider()
    provider_port = provider.start()
    redis_port = free_port()
    redis = start_redis(redis_port, directory) if shared else None
    config = json.loads((REPO / "providers.json").read_text())
    config["engine_pools"][0]["replicas"] = [{"url": f"http://127.0.0.1:{free_port()}/v1", "slots": 8}]
    config["providers"].append({"id": "scripted", "kind": "openai", "base_url": f"http://127.0.0.1:{provider_port}/v1"})
    config["deployments"].append({"id": "scripted-mini", "provider": "scripted", "model": "gpt-4o-mini"})
    config["deployments"].append({"id": "scripted-large", "provider": "scripted", "model": "gpt-4o"})
    config["models"].append({"name": "chat-pooled", "routes": ["scripted-mini"]})
    config["models"].append({"name": "chat-pooled-large", "routes": ["scripted-large"]})
    config["prices"]["scripted-mini"] = {"input_per_million": 150000, "output_per_million": 600000}
    config["prices"]["scripted-large"] = {"input_per_million": 2500000, "output_per_million": 10000000}
    (directory / "providers.json").write_text(json.dumps(config))
    processes, urls = [], []
    for index in range(2 if shared else 1):
        port = free_port()
        environment = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
        environment.update({"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_MASTER_KEY": "ab" * 32,
                            "SWITCHYARD_BCRYPT_COST": BCRYPT_COST})
        process = subprocess.Popen(
            [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(directory / "switchyard.sqlite"),
             "--port", str(port)] + (["--redis", f"redis://127.0.0.1:{redis_port}/0"] if shared else [])
            + (["--meter"] if shared and index == 0 else []),
            env=environment, stdout=open(directory / f"serve-{index}.out", "w"),
            stderr=open(directory / f"serve-{index}.log", "w"),
        )
        processes.append(process)
        urls.append(f"http://127.0.0.1:{port}")
        wait_for(urls[-1] + "/health", process)
    if not shared:
        urls.append(urls[0])
    running = Cluster(directory, provider, urls, processes)
    try:
        yield running
    finally:
        for process in processes:
            stop(process)
        if redis:
            stop(redis)
        provider.stop()
        logs = "".join((directory / name).read_text() for name in os.listdir(directory) if name.startswith("serve-"))
        shutil.rmtree(directory, ignore_errors=True)
        for secret in (KEY_A, KEY_B, KEY_C):
            assert secret not in logs, "a provider key reached the logs"


def ask(client: openai.OpenAI, stream: bool = False, model: str = "chat-pooled") -> str:
    messages = [{"role": "user", "content": "hi"}]
    if stream:
        chunks = client.chat.completions.create(model=model, messages=messages, max_tokens=8, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    answer = client.chat.completions.create(model=model, messages=messages, max_tokens=8)
    return answer.choices[0].message.content


def parse_time(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_rate_limited_key_cools_down_and_its_traffic_moves_to_another(cluster):
    key_a = cluster.add_key(KEY_A, "key-a")
    key_b = cluster.add_key(KEY_B, "key-b")
    tenant = cluster.tenant_key()
    clients = [cluster.client(tenant, 0), cluster.client(tenant, 1)]
    cluster.provider.script(KEY_A, "429", retry_after=3, times=1)

    # Every request succeeds: the 429 on A is retried on B before the client sees it.
    for index in range(12):
        assert ask(clients[index % 2], stream=index % 3 == 0) == "Hello there"
    rate_limited = [hit for hit in cluster.provider.hits_for(KEY_A) if hit.status == 429]
    assert len(rate_limited) == 1
    assert len(cluster.provider.hits_for(KEY_B)) >= 11

    # Both replicas see the cooldown (it lives in Redis) and say why.
    for url in cluster.urls:
        listed = cluster.keys(url)["key-a"]
        if listed["state"] == "cooling_down":
            assert listed["cooling_down_until"]
            assert "rate limited" in listed["state_reason"]
    cooling_until = rate_limited[0].at + 3

    # Traffic continues; A is used again once its cooldown is over, and not before.
    deadline = time.time() + 30
    while time.time() < deadline and not [hit for hit in cluster.provider.hits_for(KEY_A) if hit.status == 200]:
        for client in clients:
            assert ask(client) == "Hello there"
        time.sleep(0.1)
    served_by_a = [hit for hit in cluster.provider.hits_for(KEY_A) if hit.status == 200]
    assert served_by_a, "key A was never used again after its cooldown"
    assert served_by_a[0].at >= cooling_until - 0.05
    assert cluster.keys()["key-a"]["state"] == "active"

    # Each answer is metered against the key that served it, for per-account allocation.
    expected = {key_a["id"]: len(served_by_a),
                key_b["id"]: len([hit for hit in cluster.provider.hits_for(KEY_B) if hit.status == 200])}
    deadline = time.time() + 10
    while time.time() < deadline:
        usage = httpx.get(cluster.urls[0] + "/admin/v1/usage?group_by=provider_key",
                          headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()["data"]
        if {row["group"]: row["requests"] for row in usage} == expected:
            break
        time.sleep(0.1)
    assert {row["group"]: row["requests"] for row in usage} == expected


def test_a_cooldown_holds_for_the_deployment_that_was_rate_limited(cluster):
    # Providers limit a key per model: a 429 for one model leaves the key serving others.
    cluster.add_key(KEY_A, "key-a")
    cluster.add_key(KEY_B, "key-b")
    cluster.provider.script(KEY_A, "429", retry_after=60, times=1)
    client = cluster.client(cluster.tenant_key(), 0)
    assert ask(client) == "Hello there"
    assert [hit.status for hit in cluster.provider.hits_for(KEY_A)] == [429]
    listed = cluster.keys()["key-a"]
    assert listed["state"] == "cooling_down" and listed["cooling_down_on"] == ["scripted-mini"]
    for _ in range(6):
        assert ask(client, model="chat-pooled-large") == "Hello there"
        assert ask(client) == "Hello there"
    statuses = [hit.status for hit in cluster.provider.hits_for(KEY_A)]
    assert statuses.count(200) >= 2, "key A stopped serving the deployment that was not rate limited"
    assert statuses.count(429) == 1


def test_a_rejected_key_is_disabled_and_the_list_says_why(cluster):
    cluster.add_key(KEY_B, "key-b")
    added = cluster.add_key(KEY_C, "key-c")
    assert added["last_four"] == "CCCC"
    cluster.provider.script(KEY_C, "401")
    tenant = cluster.tenant_key()
    for index in range(6):
        assert ask(cluster.client(tenant, index % 2)) == "Hello there"
    assert len(cluster.provider.hits_for(KEY_C)) == 1

    for url in cluster.urls:
        listed = cluster.keys(url)["key-c"]
        assert listed["state"] == "disabled"
        assert "401" in listed["state_reason"]
    table = cluster.cli("provider-key", "list").stdout
    assert "key-c" in table and "disabled" in table and KEY_C not in table
    metrics = httpx.get(cluster.urls[0] + "/metrics").text + httpx.get(cluster.urls[1] + "/metrics").text
    assert 'switchyard_provider_key_events_total{event="disabled",provider="scripted",key="%s"}' % added["id"] in metrics
    # Every replica counts the deployment's keys by state: key-b available, key-c disabled.
    for url in cluster.urls:
        deadline = time.time() + 10
        while True:
            states = {match[0]: float(match[1]) for match in re.findall(
                r'^switchyard_provider_keys\{deployment="scripted-mini",provider="scripted",state="(\w+)"\} (\S+)$',
                httpx.get(url + "/metrics").text, re.MULTILINE)}
            if states == {"available": 1, "cooling_down": 0, "disabled": 1} or time.time() > deadline:
                break
            time.sleep(0.1)
        assert states == {"available": 1, "cooling_down": 0, "disabled": 1}, (url, states)

    # The operator fixes the key at the provider and re-enables it: it serves again.
    cluster.provider.script(KEY_C, "ok")
    enabled = cluster.cli("provider-key", "enable", added["id"], "--json")
    assert enabled.returncode == 0, enabled.stderr
    assert json.loads(enabled.stdout)["state"] == "active"
    cluster.in_step()
    deadline = time.time() + 20
    while time.time() < deadline and not [hit for hit in cluster.provider.hits_for(KEY_C) if hit.status == 200]:
        ask(cluster.client(tenant, 0))
    assert [hit for hit in cluster.provider.hits_for(KEY_C) if hit.status == 200]


def test_a_failing_key_is_retried_on_another_and_its_error_noted(cluster):
    failing = cluster.add_key(KEY_A, "key-a")
    cluster.add_key(KEY_B, "key-b")
    cluster.provider.script(KEY_A, "500")
    tenant = cluster.tenant_key()
    for index in range(6):
        assert ask(cluster.client(tenant, index % 2), stream=index % 2 == 1) == "Hello there"
    assert cluster.provider.hits_for(KEY_A), "key A was never tried"
    assert all(hit.status == 500 for hit in cluster.provider.hits_for(KEY_A))
    listed = cluster.keys()["key-a"]
    # A server error is the provider's, not the key's: the key stays in service.
    assert listed["state"] == "active" and listed["id"] == failing["id"]
    assert "500" in listed["last_error"] and listed["last_error_at"]


def test_a_dedicated_key_serves_only_its_tenant(cluster):
    vip_id, vip_key = cluster.tenant()
    other_key = cluster.tenant_key()
    cluster.add_key(KEY_A, "dedicated", tenant=vip_id)
    cluster.add_key(KEY_B, "shared")
    for _ in range(8):
        assert ask(cluster.client(other_key, 0)) == "Hello there"
    assert cluster.provider.hits_for(KEY_A) == []
    for _ in range(8):
        assert ask(cluster.client(vip_key, 1)) == "Hello there"
    # The dedicated key takes its share of its tenant's traffic (equal weights alternate).
    assert len(cluster.provider.hits_for(KEY_A)) >= 3
    assert cluster.keys()["dedicated"]["tenants"] == [vip_id]


def test_rotation_under_continuous_load_fails_no_request(cluster):
    cluster.provider.delay = 0.02  # so requests are in flight when keys change
    old = cluster.add_key(KEY_A, "old")
    tenant = cluster.tenant_key()
    failures: list[str] = []
    served = [0]
    stopping = threading.Event()

    def load(worker: int) -> None:
        client = cluster.client(tenant, worker % 2)
        count = 0
        while not stopping.is_set():
            try:
                assert ask(client, stream=count % 2 == 0) == "Hello there"
                served[0] += 1
            except Exception as error:  # noqa: BLE001 - every failure is the finding
                failures.append(f"{type(error).__name__}: {error}")
            count += 1

    workers = [threading.Thread(target=load, args=(index,)) for index in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        new = cluster.add_key(KEY_B, "new")
        deadline = time.time() + 10
        while time.time() < deadline and not cluster.provider.hits_for(KEY_B):
            time.sleep(0.05)
        assert cluster.provider.hits_for(KEY_B), "the new key took no traffic"

        drained = cluster.cli("provider-key", "drain", old["id"], "--json")
        assert drained.returncode == 0, drained.stderr
        assert json.loads(drained.stdout)["state"] == "draining"
        # Both replicas stop starting requests on the old key (the other once it has
        # loaded the change), and its in-flight requests finish.
        cluster.in_step()
        deadline = time.time() + 15
        while time.time() < deadline and cluster.keys()["old"]["in_flight"] != 0:
            time.sleep(0.05)
        assert cluster.keys()["old"]["in_flight"] == 0
        drained_at = time.time()

        retired = cluster.cli("provider-key", "retire", old["id"], "--json")
        assert retired.returncode == 0, retired.stderr
        assert json.loads(retired.stdout)["state"] == "retired"
        # The provider revokes the old key; nobody notices.
        cluster.provider.script(KEY_A, "401")
        time.sleep(1.0)
    finally:
        stopping.set()
        for worker in workers:
            worker.join()

    assert failures == []
    assert served[0] > 50
    assert not [hit for hit in cluster.provider.hits_for(KEY_A) if hit.at > drained_at]
    assert "old" not in cluster.keys()
    assert new["id"] in {key["id"] for key in cluster.keys().values()}
    everything = cluster.cli("provider-key", "list", "--all", "--json")
    assert "retired" in {key["state"] for key in json.loads(everything.stdout)["data"]}
    again = cluster.cli("provider-key", "enable", old["id"])
    assert again.returncode == 1 and "retired" in again.stderr


def test_keys_are_never_returned_and_bad_input_is_refused(cluster):
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    created = httpx.post(cluster.urls[0] + "/admin/v1/provider-keys", headers=headers,
                         json={"provider": "scripted", "key": KEY_A, "weight": 3, "requests_per_minute": 100})
    assert created.status_code == 201
    assert KEY_A not in created.text and created.json()["last_four"] == "AAAA"
    listed = httpx.get(cluster.urls[0] + "/admin/v1/provider-keys", headers=headers)
    assert KEY_A not in listed.text
    database = (cluster.directory / "switchyard.sqlite").read_bytes()
    assert KEY_A.encode() not in database
    for body, param in [
        ({"provider": "nope", "key": "sk-x"}, "provider"),
        ({"provider": "local-engine", "key": "sk-x"}, "provider"),
        ({"provider": "scripted", "key": ""}, "key"),
        ({"provider": "scripted", "key": "sk-x", "weight": 0}, "weight"),
        ({"provider": "scripted", "key": "sk-x", "tiers": ["gold"]}, "tiers"),
        ({"provider": "scripted", "key": "sk-x", "tenants": ["tn_missing"]}, "tenants"),
    ]:
        refused = httpx.post(cluster.urls[0] + "/admin/v1/provider-keys", headers=headers, json=body)
        assert refused.status_code == 400, body
        assert refused.json()["error"]["param"] == param
    missing = httpx.post(cluster.urls[0] + "/admin/v1/provider-keys/pk_missing/drain", headers=headers)
    assert missing.status_code == 404


def test_a_tenants_own_limits_replace_its_tiers(cluster):
    cluster.add_key(KEY_A, "key-a")
    tenant_id, tenant_key = cluster.tenant("enterprise")
    result = cluster.cli("tenant", "set-limits", tenant_id, "--rpm", "2")
    assert result.returncode == 0, result.stderr
    assert "requests_per_minute" in result.stdout and "tenant" in result.stdout
    client = cluster.client(tenant_key, 0)
    assert ask(client) == "Hello there"
    assert ask(client) == "Hello there"
    with pytest.raises(openai.RateLimitError):
        ask(client)
    cleared = cluster.cli("tenant", "set-limits", tenant_id, "--clear", "--json")
    assert json.loads(cleared.stdout)["limits"]["requests_per_minute"] is None
    assert ask(client) == "Hello there"

    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    zero = httpx.put(cluster.urls[0] + f"/admin/v1/tenants/{tenant_id}/limits", headers=headers,
                     json={"requests_per_minute": 0})
    assert zero.status_code == 400 and zero.json()["error"]["param"] == "requests_per_minute"
    wrong_type = httpx.put(cluster.urls[0] + f"/admin/v1/tenants/{tenant_id}/limits", headers=headers,
                           json={"tokens_per_minute": "lots"})
    assert wrong_type.status_code == 400
    unknown = httpx.put(cluster.urls[0] + "/admin/v1/tenants/ten_missing/limits", headers=headers, json={})
    assert unknown.status_code == 404


# A key sharing no 8-character piece with anything else in an answer.
KEY_QUOTED = "sk-Q7w9Zr2Lp4Xv8Nm3Kd6Tf1HjYb5Rc0Ws"


def leaked_fragments(text: str, secret: str, shortest: int = 8) -> list[str]:
    """Every piece of `secret` at least `shortest` long that appears in `text`."""
    return sorted({secret[i:i + shortest] for i in range(len(secret) - shortest + 1) if secret[i:i + shortest] in text})


@pytest.mark.parametrize("status", [400, 404, 422, 500, 503])
def test_upstream_errors_never_carry_the_provider_key(cluster, status):
    """Whatever the status, an upstream error relayed to the tenant is scrubbed of the key
    it was sent with (whole, or any 8-character piece) and of credential-like values."""
    cluster.add_key(KEY_QUOTED, "quoted")
    cluster.provider.script(KEY_QUOTED, "leak", status=status)
    _, tenant_key = cluster.tenant()
    response = httpx.post(
        cluster.urls[0] + "/v1/chat/completions",
        json={"model": "chat-pooled", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {tenant_key}"}, timeout=30,
    )
    assert response.status_code >= 400, response.text
    body = response.text
    assert leaked_fragments(body, KEY_QUOTED) == [], body
    assert leaked_fragments(str(response.headers), KEY_QUOTED) == []
    error = response.json()["error"]
    if status < 500:
        # The provider's own words are relayed for a request error: scrubbed, not dropped.
        assert "[redacted]" in error["message"], error
    assert set(error) == {"message", "type", "param", "code"}


def test_a_mid_stream_error_never_carries_the_provider_key(cluster):
    cluster.add_key(KEY_QUOTED, "quoted")
    cluster.provider.script(KEY_QUOTED, "leak-stream")
    _, tenant_key = cluster.tenant()
    with httpx.stream(
        "POST", cluster.urls[0] + "/v1/chat/completions",
        json={"model": "chat-pooled", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {tenant_key}"}, timeout=30,
    ) as response:
        body = "".join(response.iter_text())
    assert response.status_code == 200
    events = [line[6:] for line in body.split("\n") if line.startswith("data: ")]
    assert "Hello" in events[0]
    assert "error" in json.loads(events[-1]), events
    assert "[DONE]" not in events
    assert leaked_fragments(body, KEY_QUOTED) == [], body

