"""Tier contracts in force, live: a real `switchyard serve` in front of `switchyard
sim-engine` (2 slots, paced tokens) and a scripted OpenAI-compatible provider, driven by
the official openai SDK. Covers band order with reserved shares, spill-over, capacity
refusals, cost routing, and that no answer names a deployment or provider."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ADMIN_TOKEN, BCRYPT_COST, binary, free_port, stop, tenant_key, wait_for
from scripted_provider import ScriptedProvider

CHEAP_KEY = "sk-scripted-cheap-aaaaaaaaaaaaaaaaCHEA"
DEAR_KEY = "sk-scripted-dear-bbbbbbbbbbbbbbbbbbDEAR"
# Output tokens of each engine request, and the engine's pace: a slot is held ~0.3 s.
TOKENS = 12
TOKENS_PER_SECOND = 40
# Names a tenant must never see.
HIDDEN = ["dep-local", "dep-cheap", "dep-dear", "prov-cheap", "prov-dear", "prov-engine", "pool-gpu"]


def configuration(engine_port: int, provider_port: int) -> dict:
    provider_url = f"http://127.0.0.1:{provider_port}/v1"
    return {
        "currency": "USD",
        "providers": [
            {"id": "prov-engine", "kind": "engine", "engine_pool": "pool-gpu"},
            {"id": "prov-cheap", "kind": "openai", "base_url": provider_url, "api_key_env": "SY_TEST_CHEAP_KEY"},
            {"id": "prov-dear", "kind": "openai", "base_url": provider_url, "api_key_env": "SY_TEST_DEAR_KEY"},
        ],
        "engine_pools": [
            {"id": "pool-gpu", "max_queue": 64,
             "replicas": [{"url": f"http://127.0.0.1:{engine_port}/v1", "slots": 2}]},
        ],
        "deployments": [
            {"id": "dep-local", "provider": "prov-engine", "model": "local-model"},
            {"id": "dep-cheap", "provider": "prov-cheap", "model": "cheap-model"},
            {"id": "dep-dear", "provider": "prov-dear", "model": "dear-model"},
        ],
        "models": [
            {"name": "chat-local", "routes": ["dep-local"]},
            {"name": "chat-spill", "routes": ["dep-local", "dep-dear"]},
            {"name": "chat-cost", "routing": "cost", "routes": ["dep-dear", "dep-cheap"]},
        ],
        "prices": {
            "dep-local": {"input_per_million": 50000, "output_per_million": 150000},
            "dep-cheap": {"input_per_million": 150000, "output_per_million": 600000},
            "dep-dear": {"input_per_million": 2500000, "output_per_million": 10000000},
        },
        "tiers": [
            {"name": "enterprise", "priority": 100, "spill_over": "when_saturated", "spill_after_ms": 0,
             "max_spill_price_per_million": 5000000},
            {"name": "standard", "priority": 10, "reserved_share": 0.5, "max_queue_wait_ms": 60000},
            {"name": "basic", "priority": 5, "max_queue_wait_ms": 100},
        ],
    }


@dataclass
class Scheduled:
    proxy: str
    database: Path
    provider: ScriptedProvider
    directory: Path
    processes: list[subprocess.Popen]
    seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        response = httpx.request(method, self.proxy + path, json=body, timeout=10,
                                 headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        response.raise_for_status()
        return response.json()

    def tenant_key(self, tier: str) -> str:
        tenant = self.admin("POST", "/admin/v1/tenants", {"name": f"{tier}-{time.monotonic_ns()}", "tier": tier})
        return tenant_key(self.proxy, tenant["id"])["key"]

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.proxy + "/v1", api_key=key, max_retries=0, timeout=60)

    def ask(self, client: openai.OpenAI, model: str, max_tokens: int = TOKENS):
        """One chat completion through the SDK; returns the raw response, having noted
        every header and body the tenant saw."""
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=max_tokens,
        )
        self.note(raw.headers, raw.http_response.text)
        return raw

    def note(self, headers, text: str) -> None:
        with self.lock:
            self.seen.append(json.dumps(dict(headers)) + text)

    def pool(self) -> dict:
        return self.admin("GET", "/admin/v1/pools")["data"][0]

    def wait_idle(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pool = self.pool()
            if pool["in_flight"] == 0 and pool["queued"] == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"the pool did not drain: {self.pool()}")

    def event(self, request_id: str) -> dict:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(self.database) as db:
                db.row_factory = sqlite3.Row
                row = db.execute("SELECT * FROM usage_events WHERE request_id = ?", (request_id,)).fetchone()
            if row is not None:
                return dict(row)
            time.sleep(0.05)
        raise AssertionError(f"no usage event for {request_id}")


@pytest.fixture(scope="module")
def scheduled():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-scheduling-"))
    provider = ScriptedProvider()
    provider_port = provider.start()
    engine_port, proxy_port = free_port(), free_port()
    sim = subprocess.Popen(
        [binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0",
         "--tokens-per-second", str(TOKENS_PER_SECOND), "--slots", "2"],
        stdout=subprocess.DEVNULL, stderr=open(directory / "sim.log", "w"),
    )
    wait_for(f"http://127.0.0.1:{engine_port}/health", sim)
    (directory / "providers.json").write_text(json.dumps(configuration(engine_port, provider_port)))
    environment = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
    environment.update({
        "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_MASTER_KEY": "ab" * 32, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST,
        "SY_TEST_CHEAP_KEY": CHEAP_KEY, "SY_TEST_DEAR_KEY": DEAR_KEY,
    })
    database = directory / "switchyard.sqlite"
    serve = subprocess.Popen(
        [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(database),
         "--port", str(proxy_port)],
        env=environment, stdout=open(directory / "serve.out", "w"), stderr=open(directory / "serve.log", "w"),
    )
    proxy = f"http://127.0.0.1:{proxy_port}"
    wait_for(proxy + "/health", serve)
    running = Scheduled(proxy, database, provider, directory, [serve, sim])
    try:
        yield running
    finally:
        stop(serve)
        stop(sim)
        provider.stop()
        if os.environ.get("SWITCHYARD_KEEP_LOGS"):
            print(f"logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


def test_an_enterprise_request_waits_at_most_one_service_time_behind_a_standard_flood(scheduled):
    standard = scheduled.client(scheduled.tenant_key("standard"))
    enterprise = scheduled.client(scheduled.tenant_key("enterprise"))
    stop_flood = threading.Event()
    standard_done: list[float] = []
    failures: list[BaseException] = []

    def flood() -> None:
        while not stop_flood.is_set():
            try:
                raw = scheduled.ask(standard, "chat-local")
                assert raw.http_response.status_code == 200
                standard_done.append(time.monotonic())
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)
                return

    # The standard tenant keeps 16 requests in flight against a pool of 2 slots.
    threads = [threading.Thread(target=flood, daemon=True) for _ in range(16)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while scheduled.pool()["queued"] < 10:
            assert time.monotonic() < deadline, f"the flood never queued: {scheduled.pool()}"
            time.sleep(0.02)
        started = time.monotonic()
        waits = []
        for _ in range(10):
            raw = scheduled.ask(enterprise, "chat-local")
            assert raw.http_response.status_code == 200
            waits.append(int(raw.headers["x-switchyard-queue-ms"]))
            assert scheduled.event(raw.headers["x-request-id"])["deployment"] == "dep-local"
        finished = time.monotonic()
        pool = scheduled.pool()
    finally:
        stop_flood.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not failures, failures
    service_ms = pool["service_time_ms"]
    assert service_ms is not None and service_ms >= 1000 * TOKENS / TOKENS_PER_SECOND * 0.9
    # The enterprise tenant's median wait is at most one service time ...
    assert statistics.median(waits) <= service_ms, (waits, service_ms)
    # ... and the standard tenant, holding its reserved slot, was served all along.
    served_meanwhile = sum(1 for at in standard_done if started <= at <= finished)
    assert served_meanwhile >= 5, (served_meanwhile, finished - started)
    tiers = {tier["name"]: tier for tier in pool["tiers"]}
    assert tiers["standard"]["reserved_share"] == 0.5
    assert tiers["standard"]["queued"] > 0
    scheduled.wait_idle()


def test_a_saturated_pool_spills_enterprise_over_queues_standard_and_refuses_basic(scheduled):
    standard = scheduled.client(scheduled.tenant_key("standard"))
    enterprise = scheduled.client(scheduled.tenant_key("enterprise"))
    basic_key = scheduled.tenant_key("basic")
    holders = []
    # Two long standard requests hold both slots (5 s each).
    for _ in range(2):
        thread = threading.Thread(target=lambda: scheduled.ask(standard, "chat-spill", max_tokens=200), daemon=True)
        thread.start()
        holders.append(thread)
    deadline = time.monotonic() + 10
    while scheduled.pool()["in_flight"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    spilled = scheduled.ask(enterprise, "chat-spill")
    assert spilled.http_response.status_code == 200
    event = scheduled.event(spilled.headers["x-request-id"])
    assert event["deployment"] == "dep-dear" and event["spilled"] == 1
    assert "x-switchyard-queue-ms" not in spilled.headers

    # The standard tier never spills: it waits for the pool.
    queued = scheduled.ask(standard, "chat-spill")
    assert queued.http_response.status_code == 200
    event = scheduled.event(queued.headers["x-request-id"])
    assert event["deployment"] == "dep-local" and event["spilled"] == 0
    assert int(queued.headers["x-switchyard-queue-ms"]) > 0 and event["queue_ms"] > 0

    # The basic tier accepts 100 ms of queueing at most: refused at once, told when to retry.
    for thread in holders:
        thread.join(timeout=30)
    holders = [threading.Thread(target=lambda: scheduled.ask(standard, "chat-spill", max_tokens=200), daemon=True)
               for _ in range(2)]
    for thread in holders:
        thread.start()
    while scheduled.pool()["in_flight"] < 2:
        time.sleep(0.02)
    refused = httpx.post(scheduled.proxy + "/v1/chat/completions", timeout=30,
                         headers={"authorization": f"Bearer {basic_key}"},
                         json={"model": "chat-spill", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    scheduled.note(refused.headers, refused.text)
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["code"] == "capacity_exhausted" and error["type"] == "server_error"
    assert int(refused.headers["retry-after"]) >= 1
    assert int(refused.headers["x-switchyard-predicted-start-ms"]) > 100
    event = scheduled.event(refused.headers["x-request-id"])
    assert event["status"] == 503 and event["error_type"] == "server_error"
    # The SDK sees the same refusal as an APIStatusError with the code.
    with pytest.raises(openai.APIStatusError) as raised:
        scheduled.client(basic_key).chat.completions.create(
            model="chat-spill", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert raised.value.status_code == 503 and raised.value.code == "capacity_exhausted"
    for thread in holders:
        thread.join(timeout=30)
    metrics = httpx.get(scheduled.proxy + "/metrics").text
    assert 'switchyard_spillovers_total{model="chat-spill",deployment="dep-dear"} 1' in metrics
    assert 'switchyard_capacity_refusals_total{pool="pool-gpu",tier="basic"}' in metrics
    scheduled.wait_idle()


def test_cost_routing_picks_the_cheaper_provider_and_the_dearer_while_its_keys_cool_down(scheduled):
    client = scheduled.client(scheduled.tenant_key("enterprise"))
    # Earlier tests may have spilled over to the dear provider.
    cheap_before, dear_before = len(scheduled.provider.hits_for(CHEAP_KEY)), len(scheduled.provider.hits_for(DEAR_KEY))
    cheap = scheduled.ask(client, "chat-cost")
    assert scheduled.event(cheap.headers["x-request-id"])["deployment"] == "dep-cheap"
    assert len(scheduled.provider.hits_for(CHEAP_KEY)) == cheap_before + 1
    assert len(scheduled.provider.hits_for(DEAR_KEY)) == dear_before

    scheduled.provider.script(CHEAP_KEY, "429", retry_after=30)
    for _ in range(3):
        raw = scheduled.ask(client, "chat-cost")
        assert raw.http_response.status_code == 200
        assert scheduled.event(raw.headers["x-request-id"])["deployment"] == "dep-dear"
    # Only the first found the cheap key rate limited; the others passed it over.
    assert [hit.status for hit in scheduled.provider.hits_for(CHEAP_KEY)[cheap_before:]] == [200, 429]
    assert len(scheduled.provider.hits_for(DEAR_KEY)) == dear_before + 3
    scheduled.provider.script(CHEAP_KEY, "ok")


def test_no_answer_or_error_names_a_deployment_or_provider(scheduled):
    client = scheduled.client(scheduled.tenant_key("basic"))
    scheduled.ask(client, "chat-local")
    for model in ("chat-local", "no-such-model"):
        response = httpx.post(scheduled.proxy + "/v1/chat/completions", timeout=30,
                              headers={"authorization": f"Bearer {scheduled.tenant_key('basic')}"},
                              json={"model": model, "messages": [{"role": "user", "content": "hi"}],
                                    "max_tokens": 20_000_000})
        scheduled.note(response.headers, response.text)
        assert response.status_code in (400, 404)
    models = httpx.get(scheduled.proxy + "/v1/models", headers={"authorization": f"Bearer {scheduled.tenant_key('basic')}"})
    scheduled.note(models.headers, models.text)
    assert len(scheduled.seen) >= 4
    for text in scheduled.seen:
        for name in HIDDEN:
            assert name not in text, f"{name} was shown to a tenant: {text[:400]}"


def test_the_cli_pins_a_model_and_shows_the_pools(scheduled):
    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([binary(), *args, "--server", scheduled.proxy, "--token", ADMIN_TOKEN],
                              capture_output=True, text=True, check=check, timeout=60)

    tenant = scheduled.admin("POST", "/admin/v1/tenants", {"name": f"pinned-{time.monotonic_ns()}", "tier": "enterprise"})
    key = tenant_key(scheduled.proxy, tenant["id"])["key"]
    pinned = json.loads(cli("tenant", "set-pinning", tenant["id"], "chat-spill=dep-local", "--json").stdout)
    assert pinned["pinning"] == {"chat-spill": "dep-local"}
    assert "dep-local" in cli("tenant", "set-pinning", tenant["id"], "chat-spill=dep-local").stdout
    wrong = cli("tenant", "set-pinning", tenant["id"], "chat-spill=dep-cheap", check=False)
    assert wrong.returncode == 1 and "has no deployment 'dep-cheap'" in wrong.stderr
    assert cli("tenant", "set-pinning", tenant["id"], "chat-spill", check=False).returncode != 0

    # Pinned to the engine, the enterprise tenant never spills, even with the pool full.
    standard = scheduled.client(scheduled.tenant_key("standard"))
    holders = [threading.Thread(target=lambda: scheduled.ask(standard, "chat-local", max_tokens=80), daemon=True)
               for _ in range(2)]
    for thread in holders:
        thread.start()
    while scheduled.pool()["in_flight"] < 2:
        time.sleep(0.02)
    raw = scheduled.ask(scheduled.client(key), "chat-spill")
    event = scheduled.event(raw.headers["x-request-id"])
    assert event["deployment"] == "dep-local" and event["spilled"] == 0 and event["queue_ms"] > 0
    for thread in holders:
        thread.join(timeout=30)

    pools = json.loads(cli("pools", "--json").stdout)["data"]
    assert pools[0]["id"] == "pool-gpu" and pools[0]["slots"] == 2
    assert [tier["name"] for tier in pools[0]["tiers"]] == ["enterprise", "standard", "basic"]
    table = cli("pools").stdout
    assert "pool-gpu" in table and "PREDICTED_START_MS" in table
    cleared = json.loads(cli("tenant", "set-pinning", tenant["id"], "--clear", "--json").stdout)
    assert cleared["pinning"] == {}
