"""Tenant limits shared through a real redis-server by several `switchyard serve`
replicas, and what happens when Redis goes away and comes back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_TOKEN, BCRYPT_COST, REPO, binary, free_port, stop, tenant_key, wait_for

LIMIT = 12


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: scripts/install-deps.sh installs it")
    process = subprocess.Popen(
        [server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            return process
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


@pytest.fixture()
def replicas():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-redis-"))
    redis_port, engine_port = free_port(), free_port()
    redis = start_redis(redis_port, directory)
    sim = subprocess.Popen([binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0",
                            "--tokens-per-second", "0", "--slots", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"http://127.0.0.1:{engine_port}/health", sim)
    config = json.loads((REPO / "providers.json").read_text())
    config["engine_pools"][0]["replicas"] = [{"url": f"http://127.0.0.1:{engine_port}/v1", "slots": 64}]
    config["tiers"].append({"name": "shared-limited", "priority": 1, "requests_per_minute": LIMIT})
    (directory / "providers.json").write_text(json.dumps(config))
    database = directory / "switchyard.sqlite"
    processes, urls = [], []
    for index, policy in enumerate(["open", "closed", "open"]):
        port = free_port()
        environment = {**os.environ, "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST}
        process = subprocess.Popen(
            [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(database), "--port", str(port),
             "--redis", f"redis://127.0.0.1:{redis_port}/0", "--redis-failure", policy],
            env=environment, stdout=subprocess.DEVNULL, stderr=open(directory / f"serve-{index}.log", "w"),
        )
        processes.append(process)
        urls.append(f"http://127.0.0.1:{port}")
        wait_for(urls[-1] + "/health", process)
    state = {"redis": redis, "redis_port": redis_port, "directory": directory}
    try:
        yield urls, processes, state
    finally:
        for process in processes:
            stop(process)
        stop(sim)
        stop(state["redis"])
        shutil.rmtree(directory, ignore_errors=True)


def make_key(url: str, tier: str) -> str:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    tenant = httpx.post(url + "/admin/v1/tenants", json={"name": f"t-{time.monotonic_ns()}", "tier": tier}, headers=headers).json()
    return tenant_key(url, tenant["id"])["key"]


def redis_up(url: str, expected: float) -> float:
    """The replica's switchyard_redis_up once it is `expected`, or after 10 s (the stores
    are read at most every 2 s, so a scrape may show the figure of the one before)."""
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(url + "/metrics", timeout=30).text
        values = [float(line.split()[1]) for line in text.splitlines() if line.startswith("switchyard_redis_up ")]
        assert len(values) == 1, text
        if values[0] == expected or time.monotonic() > deadline:
            return values[0]
        time.sleep(0.2)


def refilled(since: float) -> int:
    """Requests the bucket can have refilled since `since`."""
    return int((time.monotonic() - since) * LIMIT / 60)


def chat(url: str, key: str) -> int:
    response = httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=30,
                          json={"model": "chat-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    return response.status_code


def test_three_replicas_admit_no_more_than_the_limit_and_survive_redis_going_away(replicas):
    urls, processes, state = replicas
    key = make_key(urls[0], "shared-limited")
    # Each replica says Redis answers, before any traffic.
    for url in urls:
        assert redis_up(url, 1) == 1

    # Concurrent load spread over the three replicas: the limit is admitted, plus only
    # what the bucket refilled meanwhile (one request every 60 / LIMIT seconds).
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=24) as pool:
        statuses = list(pool.map(lambda i: chat(urls[i % 3], key), range(60)))
    assert LIMIT <= statuses.count(200) <= LIMIT + refilled(started)
    assert set(statuses) == {200, 429}

    # Redis stops mid-load: fail-open replicas keep serving on their own limits,
    # the fail-closed replica answers 503; nothing crashes.
    stop(state["redis"])
    other = make_key(urls[0], "shared-limited")
    assert chat(urls[0], other) == 200
    closed = httpx.post(urls[1] + "/v1/chat/completions", headers={"authorization": f"Bearer {other}"},
                        json={"model": "chat-small", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert closed.status_code == 503
    assert closed.json()["error"]["code"] == "rate_limiter_unavailable"
    metrics = httpx.get(urls[1] + "/metrics").text
    assert "switchyard_limit_store_failures_total" in metrics
    # Every replica sees Redis down at its next scrape, whether or not it served anything.
    for url in urls:
        assert redis_up(url, 0) == 0
    assert all(process.poll() is None for process in processes)

    # Redis is back (empty: it kept nothing): every replica decides through it again.
    state["redis"] = start_redis(state["redis_port"], state["directory"])
    fresh = make_key(urls[0], "shared-limited")
    deadline = time.monotonic() + 10
    status = 0
    while time.monotonic() < deadline:
        status = chat(urls[1], fresh)
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200
    for url in urls:
        assert redis_up(url, 1) == 1
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda i: chat(urls[i % 3], fresh), range(30)))
    assert LIMIT - 1 <= statuses.count(200) <= LIMIT - 1 + refilled(started)
