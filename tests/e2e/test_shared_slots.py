"""Two `switchyard serve` replicas on one real redis-server share an engine pool's slots:
together they never run more requests on the engine than the pool has slots, and every
request is served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai

from conftest import ADMIN_TOKEN, BCRYPT_COST, binary, free_port, stop, tenant_key, wait_for
from test_shared_limits import start_redis

POOL_SLOTS = 2


def running_on_engine(engine: str) -> int:
    text = httpx.get(engine + "/metrics", timeout=5).text
    line = next(line for line in text.splitlines() if line.startswith("vllm:num_requests_running"))
    return int(float(line.split()[-1]))


def test_two_replicas_never_hold_more_than_the_pools_slots():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-slots-"))
    redis_port, engine_port = free_port(), free_port()
    processes: list[subprocess.Popen] = []
    try:
        processes.append(start_redis(redis_port, directory))
        # The engine itself would run 8 at once: only the proxies keep it to the pool's 2.
        processes.append(subprocess.Popen(
            [binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0",
             "--tokens-per-second", "50", "--slots", "8"],
            stdout=subprocess.DEVNULL, stderr=open(directory / "sim.log", "w"),
        ))
        engine = f"http://127.0.0.1:{engine_port}"
        wait_for(engine + "/health", processes[-1])
        config = {
            "providers": [{"id": "engine", "kind": "engine", "engine_pool": "gpu"}],
            "engine_pools": [{"id": "gpu", "replicas": [{"url": engine + "/v1", "slots": POOL_SLOTS}]}],
            "deployments": [{"id": "local", "provider": "engine", "model": "local-model"}],
            "models": [{"name": "chat-local", "routes": ["local"]}],
            "tiers": [{"name": "standard", "priority": 10}],
        }
        (directory / "providers.json").write_text(json.dumps(config))
        environment = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
        environment.update({"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_MASTER_KEY": "ab" * 32,
                            "SWITCHYARD_BCRYPT_COST": BCRYPT_COST})
        proxies = []
        for index in range(2):
            port = free_port()
            processes.append(subprocess.Popen(
                [binary(), "serve", "--config", str(directory / "providers.json"),
                 "--db", str(directory / "switchyard.sqlite"), "--port", str(port),
                 "--redis", f"redis://127.0.0.1:{redis_port}/0"],
                env=environment, stdout=open(directory / f"serve-{index}.out", "w"),
                stderr=open(directory / f"serve-{index}.log", "w"),
            ))
            proxies.append(f"http://127.0.0.1:{port}")
            wait_for(proxies[-1] + "/health", processes[-1])
        admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        tenant = httpx.post(proxies[0] + "/admin/v1/tenants", json={"name": "shared", "tier": "standard"},
                            headers=admin).json()
        key = tenant_key(proxies[0], tenant["id"])["key"]

        failures: list[BaseException] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def load(proxy: str) -> None:
            client = openai.OpenAI(base_url=proxy + "/v1", api_key=key, max_retries=0, timeout=60)
            for _ in range(4):
                try:
                    raw = client.chat.completions.with_raw_response.create(
                        model="chat-local", messages=[{"role": "user", "content": "hi"}], max_tokens=10)
                    with lock:
                        statuses.append(raw.http_response.status_code)
                except BaseException as error:  # noqa: BLE001 - reported below
                    failures.append(error)
                    return

        threads = [threading.Thread(target=load, args=(proxies[index % 2],), daemon=True) for index in range(12)]
        for thread in threads:
            thread.start()
        most = 0
        while any(thread.is_alive() for thread in threads):
            most = max(most, running_on_engine(engine))
            time.sleep(0.01)
        for thread in threads:
            thread.join()
        assert not failures, failures
        assert statuses == [200] * 48
        # The engine ran the pool's slots in full, never more.
        assert most == POOL_SLOTS
        for proxy in proxies:
            pool = httpx.get(proxy + "/admin/v1/pools", headers=admin).json()["data"][0]
            assert pool["in_flight"] == 0 and pool["queued"] == 0
        held = subprocess.run(["redis-cli", "-p", str(redis_port), "zcard", "sy:{pool:gpu}:slots"],
                              capture_output=True, text=True).stdout.strip()
        deadline = time.monotonic() + 5
        while held != "0" and time.monotonic() < deadline:
            time.sleep(0.05)
            held = subprocess.run(["redis-cli", "-p", str(redis_port), "zcard", "sy:{pool:gpu}:slots"],
                                  capture_output=True, text=True).stdout.strip()
        assert held == "0", "leases were left in Redis"
    finally:
        for process in reversed(processes):
            stop(process)
        shutil.rmtree(directory, ignore_errors=True)
