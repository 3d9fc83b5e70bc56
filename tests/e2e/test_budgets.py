"""Quotas, budgets, overage and alerts through running `switchyard serve` processes, a real
redis-server, the real SQLite ledger and real HTTP webhook receivers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest

from conftest import ADMIN_TOKEN, BCRYPT_COST, REPO, binary, free_port, start_deployment, stop, tenant_key, wait_for
from test_shared_limits import start_redis

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MESSAGES = [{"role": "user", "content": "Tell me about model proxies"}]
MAX_TOKENS = 8

# Tiers with quotas. Their models are chat-small only, whose dearest deployment price is
# openai-gpt-4o-mini's output, 600000 per million: the overage price must reach it.
QUOTA_TIERS = [
    {"name": "metered", "priority": 5, "models": ["chat-small"], "monthly_quota_tokens": 60,
     "overage_per_million": 2_000_000, "on_quota_exhausted": "overage"},
    {"name": "capped", "priority": 5, "models": ["chat-small"], "monthly_quota_tokens": 40,
     "on_quota_exhausted": "block"},
    {"name": "slowed", "priority": 5, "models": ["chat-small"], "monthly_quota_tokens": 20,
     "on_quota_exhausted": "throttle", "throttled_requests_per_minute": 2},
]


def add_quota_tiers(config: dict) -> None:
    config["tiers"].extend(json.loads(json.dumps(QUOTA_TIERS)))


@pytest.fixture(scope="module")
def budgets():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-budgets-"))
    running = start_deployment(directory, configure=add_quota_tiers)
    try:
        yield running
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)


def make_tenant(url: str, tier: str = "enterprise") -> tuple[str, str, str]:
    tenant = httpx.post(url + "/admin/v1/tenants", json={"name": f"b-{time.monotonic_ns()}", "tier": tier}, headers=HEADERS)
    tenant.raise_for_status()
    key = tenant_key(url, tenant.json()["id"])
    return tenant.json()["id"], key["id"], key["key"]


def chat(url: str, key: str, *, stream: bool = False, max_tokens: int = MAX_TOKENS) -> httpx.Response:
    body = {"model": "chat-small", "messages": MESSAGES, "max_tokens": max_tokens}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return httpx.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=60)


def request_bytes() -> int:
    """The body's size: the prompt estimate is at most this many tokens."""
    body = {"model": "chat-small", "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True,
            "stream_options": {"include_usage": True}}
    return len(json.dumps(body))


def one_request_tokens(url: str) -> int:
    """What one request uses, measured on a tenant of its own."""
    _, _, key = make_tenant(url)
    usage = chat(url, key).json()["usage"]
    return usage["prompt_tokens"] + usage["completion_tokens"]


def ledger(database: Path, tenant_id: str) -> tuple[int, int, int]:
    """Events, tokens and cost the ledger holds for a tenant."""
    with sqlite3.connect(database) as db:
        count, tokens, micros = db.execute(
            "SELECT count(*), coalesce(sum(prompt_tokens + completion_tokens), 0), coalesce(sum(cost_micros), 0) "
            "FROM usage_events WHERE tenant_id = ?", (tenant_id,)
        ).fetchone()
    return count, tokens, micros


def wait_until(condition, timeout: float = 30.0, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{message} did not hold within {timeout}s")


def budget(url: str, tenant_id: str) -> dict:
    response = httpx.get(url + f"/admin/v1/tenants/{tenant_id}/budget", headers=HEADERS, timeout=10)
    response.raise_for_status()
    return response.json()


def settled(url: str, database: Path, tenant_id: str, events: int) -> dict | None:
    """The budget once the ledger holds `events` events and nothing is reserved."""
    count, tokens, micros = ledger(database, tenant_id)
    if count != events:
        return None
    shown = budget(url, tenant_id)
    if shown["reserved_tokens"] != 0 or shown["used_tokens"] != tokens or shown["used_micros"] != micros:
        return None
    return shown


def refused_for_budget(response: httpx.Response, code: str = "budget_exceeded") -> bool:
    if response.status_code != 429:
        return False
    error = response.json()["error"]
    assert error["type"] == "insufficient_quota", error
    assert error["code"] == code, error
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-switchyard-budget-reset"].endswith("Z")
    assert response.headers["x-switchyard-budget-reset"][:10] in error["message"]
    return True


def burst(url: str, key: str, count: int = 200) -> list[httpx.Response]:
    """`count` requests at once, every other one streamed."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda index: chat(url, key, stream=index % 2 == 1), range(count)))


# MARK: Never overspent


def test_concurrent_requests_never_overspend_a_tenant_budget(budgets):
    per_request = one_request_tokens(budgets.proxy)
    limit = 50 * per_request
    tenant_id, _, key = make_tenant(budgets.proxy)
    set_budget = budgets.cli_json("budget", "set", "--tenant", tenant_id, "--period", "month", "--limit-tokens", str(limit))
    assert set_budget["limit_tokens"] == limit and set_budget["used_tokens"] == 0

    responses = burst(budgets.proxy, key)
    served = [response for response in responses if response.status_code == 200]
    refused = [response for response in responses if response.status_code != 200]
    assert served, "some requests fit the budget"
    assert refused, "the budget refused the rest"
    assert all(refused_for_budget(response) for response in refused)
    assert any(response.text.endswith("data: [DONE]\n\n") for response in served), "streamed answers were among them"

    shown = wait_until(lambda: settled(budgets.proxy, budgets.database, tenant_id, len(served)), message="settlement")
    _, spent, _ = ledger(budgets.database, tenant_id)
    reservation = request_bytes() + MAX_TOKENS
    assert spent <= limit + reservation, f"spent {spent} of {limit}, one reservation is at most {reservation}"
    assert shown["used_tokens"] == spent
    assert shown["remaining_tokens"] == max(0, limit - spent)
    if spent >= limit:
        assert refused_for_budget(chat(budgets.proxy, key))


def test_three_replicas_on_one_redis_never_overspend_a_money_budget(tmp_path):
    redis_port, engine_port = free_port(), free_port()
    redis = start_redis(redis_port, tmp_path)
    sim = subprocess.Popen([binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0", "--tokens-per-second", "0",
                            "--slots", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes, urls = [], []
    try:
        wait_for(f"http://127.0.0.1:{engine_port}/health", sim)
        config = json.loads((REPO / "providers.json").read_text())
        config["engine_pools"][0]["replicas"] = [{"url": f"http://127.0.0.1:{engine_port}/v1", "slots": 64}]
        (tmp_path / "providers.json").write_text(json.dumps(config))
        database = tmp_path / "switchyard.sqlite"
        for index in range(3):
            port = free_port()
            process = subprocess.Popen(
                [binary(), "serve", "--config", str(tmp_path / "providers.json"), "--db", str(database), "--port", str(port),
                 "--redis", f"redis://127.0.0.1:{redis_port}/0"] + (["--meter"] if index == 0 else []),
                env={**os.environ, "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST},
                stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"serve-{index}.log", "w"),
            )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_for(urls[-1] + "/health", process)

        _, probe_key = make_tenant(urls[0])[1:]
        probe = chat(urls[0], probe_key).json()["usage"]
        # local-llama-8b: 50000 per million prompt tokens, 150000 per million completion.
        per_request = round(probe["prompt_tokens"] * 0.05 + probe["completion_tokens"] * 0.15)
        limit = 50 * max(1, per_request)
        tenant_id, _, key = make_tenant(urls[0])
        put = httpx.put(urls[1] + f"/admin/v1/tenants/{tenant_id}/budget",
                        json={"period": "day", "limit_micros": limit, "action": "block"}, headers=HEADERS)
        assert put.status_code == 200, put.text

        with ThreadPoolExecutor(max_workers=200) as pool:
            responses = list(pool.map(lambda index: chat(urls[index % 3], key, stream=index % 2 == 1), range(200)))
        served = [response for response in responses if response.status_code == 200]
        refused = [response for response in responses if response.status_code != 200]
        assert served and refused
        assert all(refused_for_budget(response) for response in refused)

        def agreed():
            count, _, micros = ledger(database, tenant_id)
            shown = budget(urls[2], tenant_id)
            return shown if count == len(served) and shown["reserved_micros"] == 0 and shown["used_micros"] == micros else None

        shown = wait_until(agreed, message="settlement on every replica")
        # The worst case of one request: its body's bytes as prompt tokens and its output,
        # at the dearest servable price of chat-small (local-llama-8b; no provider key is set).
        reservation = round(request_bytes() * 0.05 + MAX_TOKENS * 0.15) + 1
        assert shown["used_micros"] <= limit + reservation, shown
        assert shown["period"] == "day"
    finally:
        for process in processes:
            stop(process)
        stop(sim)
        stop(redis)


def test_an_abandoned_stream_is_settled_with_what_it_produced(slow_deployment):
    tenant_id, _, key = make_tenant(slow_deployment.proxy)
    httpx.put(slow_deployment.proxy + f"/admin/v1/tenants/{tenant_id}/budget",
              json={"period": "week", "limit_tokens": 100_000}, headers=HEADERS).raise_for_status()
    sdk = openai.OpenAI(base_url=slow_deployment.proxy + "/v1", api_key=key, max_retries=0, timeout=30)
    stream = sdk.chat.completions.create(model="chat-small", messages=MESSAGES, max_tokens=400, stream=True)
    for index, _ in enumerate(stream):
        if index == 5:
            break
    stream.close()

    def aborted():
        with sqlite3.connect(slow_deployment.database) as db:
            return db.execute(
                "SELECT prompt_tokens + completion_tokens, completion_tokens FROM usage_events "
                "WHERE tenant_id = ? AND client_aborted = 1", (tenant_id,)
            ).fetchone()

    tokens, completion = wait_until(aborted, message="the aborted stream's event")
    assert 0 < completion < 400, "settled with what was produced, not the reservation"
    shown = wait_until(lambda: settled(slow_deployment.proxy, slow_deployment.database, tenant_id, 1), message="settlement")
    assert shown["used_tokens"] == tokens
    assert shown["reserved_tokens"] == 0


# MARK: Nothing resets by accident


def test_a_redis_flush_or_a_restart_hands_out_no_fresh_budget(tmp_path):
    redis_port = free_port()
    redis = start_redis(redis_port, tmp_path)
    running = start_deployment(tmp_path, serve_args=("--redis", f"redis://127.0.0.1:{redis_port}/0", "--meter"))
    try:
        per_request = one_request_tokens(running.proxy)
        tenant_id, _, key = make_tenant(running.proxy)
        running.cli("budget", "set", "--tenant", tenant_id, "--limit-tokens", str(3 * per_request), "--action", "block")
        served = 0
        while (response := chat(running.proxy, key)).status_code == 200:
            served += 1
        assert refused_for_budget(response)
        before = wait_until(lambda: settled(running.proxy, running.database, tenant_id, served), message="settlement")
        assert before["used_tokens"] >= 3 * per_request

        flushed = subprocess.run(["redis-cli", "-p", str(redis_port), "flushall"], capture_output=True, text=True)
        assert flushed.stdout.strip() == "OK"
        after = budget(running.proxy, tenant_id)
        assert (after["used_tokens"], after["used_micros"]) == (before["used_tokens"], before["used_micros"])
        assert refused_for_budget(chat(running.proxy, key)), "the budget still refuses after the flush"

        # A restart in process, without Redis: the ledger still knows what was spent.
        stop(running.serve)
        stop(running.sim)
        restarted = start_deployment(tmp_path)
        try:
            again = budget(restarted.proxy, tenant_id)
            assert again["used_tokens"] == before["used_tokens"]
            assert refused_for_budget(chat(restarted.proxy, key))
            shown = restarted.cli("budget", "show", "--tenant", tenant_id).stdout
            assert str(before["used_tokens"]) in shown and "block" in shown
        finally:
            stop(restarted.serve)
            stop(restarted.sim)
    finally:
        stop(running.serve)
        stop(running.sim)
        stop(redis)


# MARK: Overage, block, throttle, margin floor


def test_overage_is_served_and_billed_at_the_tiers_price(budgets):
    tenant_id, _, key = make_tenant(budgets.proxy, tier="metered")
    for _ in range(8):
        assert chat(budgets.proxy, key).status_code == 200
    wait_until(lambda: ledger(budgets.database, tenant_id)[0] == 8, message="events")
    with sqlite3.connect(budgets.database) as db:
        rows = db.execute(
            "SELECT prompt_tokens + completion_tokens, billed_micros, cost_micros FROM usage_events "
            "WHERE tenant_id = ? ORDER BY id", (tenant_id,)
        ).fetchall()
    quota, price, used, expected = 60, 2_000_000, 0, []
    for tokens, _, _ in rows:
        beyond = max(0, used + tokens - max(quota, used))
        expected.append((beyond * price + 500_000) // 1_000_000)
        used += tokens
    assert used > quota, "the test spends past the quota"
    assert [billed for _, billed, _ in rows] == expected
    assert expected[0] == 0 and expected[-1] > 0
    quota = wait_until(lambda: (shown := httpx.get(budgets.proxy + f"/admin/v1/tenants/{tenant_id}/quota",
                                                   headers=HEADERS).json())["reserved_tokens"] == 0 and shown,
                       message="the quota settled")
    assert (quota["monthly_quota_tokens"], quota["on_quota_exhausted"], quota["overage_per_million"]) == (60, "overage", price)
    assert (quota["used_tokens"], quota["remaining_tokens"]) == (used, 0)
    report = httpx.get(budgets.proxy + f"/admin/v1/usage?tenant={tenant_id}&group_by=tenant", headers=HEADERS).json()
    group = report["data"][0]
    assert group["billed_micros"] == sum(expected)
    assert group["margin_micros"] == sum(expected) - sum(cost for _, _, cost in rows)


def test_a_blocking_quota_refuses_once_exhausted(budgets):
    tenant_id, _, key = make_tenant(budgets.proxy, tier="capped")
    served = 0
    while (response := chat(budgets.proxy, key)).status_code == 200:
        served += 1
        assert served < 20
    assert served >= 1
    assert refused_for_budget(response, code="quota_exhausted")
    assert "quota" in response.json()["error"]["message"]
    with pytest.raises(openai.RateLimitError) as raised:
        openai.OpenAI(base_url=budgets.proxy + "/v1", api_key=key, max_retries=0).chat.completions.create(
            model="chat-small", messages=MESSAGES, max_tokens=2
        )
    assert raised.value.code == "quota_exhausted"
    shown = budgets.cli("budget", "quota", "--tenant", tenant_id).stdout
    assert "40 tokens a month, then block" in shown
    unmetered, _, _ = make_tenant(budgets.proxy)
    missing = httpx.get(budgets.proxy + f"/admin/v1/tenants/{unmetered}/quota", headers=HEADERS)
    assert missing.status_code == 404 and "no token quota" in missing.json()["error"]["message"]


def test_a_throttling_quota_serves_slowly_once_exhausted(budgets):
    _, _, key = make_tenant(budgets.proxy, tier="slowed")
    while "x-switchyard-throttled" not in (response := chat(budgets.proxy, key)).headers:
        assert response.status_code == 200
    assert response.status_code == 200, "the first request past the quota is served, throttled"
    assert chat(budgets.proxy, key).headers.get("x-switchyard-throttled") == "true"
    refused = chat(budgets.proxy, key)
    assert refused_for_budget(refused, code="quota_exhausted")
    assert "throttled to 2 per minute" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) <= 30
    metrics = httpx.get(budgets.proxy + "/metrics").text
    assert 'switchyard_throttled_requests_total{tier="slowed"} 2' in metrics
    assert 'switchyard_budget_refusals_total{tier="slowed",code="quota_exhausted",throttled="true"} 1' in metrics


def test_the_margin_floor_refuses_an_overage_price_below_cost(tmp_path):
    config = json.loads((REPO / "providers.json").read_text())
    config["tiers"].append({"name": "underpriced", "priority": 1, "models": ["chat-small"],
                            "monthly_quota_tokens": 1000, "overage_per_million": 100_000})
    (tmp_path / "providers.json").write_text(json.dumps(config))
    result = subprocess.run(
        [binary(), "serve", "--config", str(tmp_path / "providers.json"), "--db", str(tmp_path / "db.sqlite"), "--port", "0"],
        capture_output=True, text=True, timeout=60, env={"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    index = len(config["tiers"]) - 1
    assert f"$.tiers[{index}].overage_per_million" in result.stderr
    assert "openai-gpt-4o-mini" in result.stderr and "below cost" in result.stderr


# MARK: Budget administration


def test_budget_api_validates_and_clears(budgets):
    tenant_id, key_id, _ = make_tenant(budgets.proxy)
    path = budgets.proxy + f"/admin/v1/tenants/{tenant_id}/budget"
    assert httpx.get(path, headers=HEADERS).status_code == 404
    for body, param in [({"period": "year", "limit_tokens": 5}, "period"), ({"period": "day"}, "limit_tokens"),
                        ({"period": "day", "limit_tokens": -1}, "limit_tokens"),
                        ({"period": "day", "limit_tokens": 5, "soft_thresholds": [1.5]}, "soft_thresholds"),
                        ({"period": "day", "limit_tokens": 5, "action": "explode"}, "action")]:
        refused = httpx.put(path, json=body, headers=HEADERS)
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"]["param"] == param
    key_budget = budgets.cli_json("budget", "set", "--key", key_id, "--period", "week", "--limit-micros", "5000",
                                  "--soft-thresholds", "0.5,0.9", "--action", "throttle")
    assert (key_budget["scope"], key_budget["key_id"], key_budget["soft_thresholds"]) == ("key", key_id, [0.5, 0.9])
    assert key_budget["limit_tokens"] is None and key_budget["remaining_micros"] == 5000
    assert key_budget["period_start"] < key_budget["resets_at"]
    budgets.cli("budget", "clear", "--key", key_id)
    assert httpx.get(budgets.proxy + f"/admin/v1/keys/{key_id}/budget", headers=HEADERS).status_code == 404
    assert httpx.put(budgets.proxy + "/admin/v1/keys/key_nope/budget", json={"period": "day", "limit_tokens": 1},
                     headers=HEADERS).status_code == 404
    both = budgets.cli("budget", "show", check=False)
    assert both.returncode != 0 and "--tenant" in both.stderr


# MARK: Alerts


class Receiver:
    """A webhook receiver: a real HTTP server that keeps every POST."""

    def __init__(self, port: int):
        self.port, self.received, self.lock = port, [], threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def verify(headers: dict, body: bytes, secret: str) -> bool:
    fields = dict(part.split("=", 1) for part in headers["x-switchyard-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 120


def test_signed_alerts_arrive_once_each_even_when_the_receiver_starts_late(budgets):
    per_request = one_request_tokens(budgets.proxy)
    tenant_id, _, key = make_tenant(budgets.proxy)
    receiver = Receiver(free_port())
    created = httpx.post(budgets.proxy + f"/admin/v1/tenants/{tenant_id}/webhooks",
                         json={"url": f"http://127.0.0.1:{receiver.port}/alerts",
                               "events": ["budget.threshold_reached", "budget.exceeded"]}, headers=HEADERS)
    assert created.status_code == 201, created.text
    webhook = created.json()
    assert webhook["secret"].startswith("whsec_")
    listed = httpx.get(budgets.proxy + f"/admin/v1/tenants/{tenant_id}/webhooks", headers=HEADERS).json()["data"]
    assert [item["id"] for item in listed] == [webhook["id"]] and "secret" not in listed[0]

    httpx.put(budgets.proxy + f"/admin/v1/tenants/{tenant_id}/budget",
              json={"period": "month", "limit_tokens": 10 * per_request, "soft_thresholds": [0.8]},
              headers=HEADERS).raise_for_status()
    served = 0
    while chat(budgets.proxy, key).status_code == 200:
        served += 1
        assert served <= 12
    deliveries = budgets.proxy + f"/admin/v1/tenants/{tenant_id}/webhooks/{webhook['id']}/deliveries"
    # The receiver is down: the attempts fail and are retried.
    failed = wait_until(lambda: [item for item in httpx.get(deliveries, headers=HEADERS).json()["data"] if item["attempts"] >= 1
                                 and item["last_error"]], message="a failed attempt")
    assert failed[0]["status"] == "pending"
    receiver.start()
    try:
        wait_until(lambda: len(receiver.received) >= 2, timeout=40, message="both alerts")
        time.sleep(3)  # any duplicate would have arrived by now
        bodies = [json.loads(body) for _, body in receiver.received]
        assert sorted(body["type"] for body in bodies) == ["budget.exceeded", "budget.threshold_reached"]
        assert len({body["id"] for body in bodies}) == 2
        for headers, body in receiver.received:
            assert verify({name.lower(): value for name, value in headers.items()}, body, webhook["secret"])
        threshold = next(body for body in bodies if body["type"] == "budget.threshold_reached")
        assert threshold["tenant_id"] == tenant_id
        assert threshold["data"]["threshold"] == 0.8 and threshold["data"]["limit_tokens"] == 10 * per_request
        assert threshold["data"]["used_tokens"] >= 8 * per_request
        states = wait_until(lambda: [item["status"] for item in httpx.get(deliveries, headers=HEADERS).json()["data"]]
                            if all(item["status"] == "delivered" for item in httpx.get(deliveries, headers=HEADERS).json()["data"])
                            else None, message="deliveries marked delivered")
        assert states == ["delivered", "delivered"]
    finally:
        receiver.stop()
