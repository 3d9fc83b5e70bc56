"""Durable metering (issue 13): every request a client was answered in full is in the
ledger exactly once, whatever is killed or stopped while the load runs — `switchyard
serve` in embedded mode, serve in front of Redis, `switchyard meter`, or Redis itself.

Each scenario runs real processes (the engine simulator, serve, redis-server, meter) on
files in the test's own folder, sends chat completions from several threads, records
the `x-request-id` of every complete 200 (a stream counts once its `[DONE]` arrived),
and then reads the ledger: the SQLite file directly, and the admin API."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_TOKEN, BCRYPT_COST, REPO, binary, free_port, stop, tenant_key, wait_for

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
THREADS = 16
# Complete answers before the kill: a few hundred, a different number each run.
ANSWERS_BEFORE = (150, 300)
# Complete answers after the restart, while the restarted process delivers what was left.
ANSWERS_AFTER = 100
DELIVERY_TIMEOUT = 30.0
STREAM_KEY = "sy:{usage}:events"
METER_GROUP = "meters"


def poll(condition, timeout: float, message: str):
    """The first truthy value of `condition()`, asked until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (not within {timeout}s)")
        time.sleep(0.05)


# MARK: - Processes


class Stack:
    """The processes of one scenario, all in one folder; whatever is still running is
    stopped at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.database = directory / "switchyard.sqlite"
        self.spool = directory / "switchyard.sqlite-spool"
        self.processes: list[subprocess.Popen] = []
        self.logs: list = []
        self.proxy_port = free_port()
        self.proxy = f"http://127.0.0.1:{self.proxy_port}"
        self.redis_port: int | None = None
        self.serve: subprocess.Popen | None = None
        self.meter: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        self.starts = Counter()
        self.environment = {key: value for key, value in os.environ.items() if not key.endswith("_API_KEY")}
        self.environment.update({"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN, "SWITCHYARD_BCRYPT_COST": BCRYPT_COST})
        engine_port = free_port()
        sim = self._spawn([binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "2",
                           "--tokens-per-second", "2000", "--slots", "64"], "sim")
        wait_for(f"http://127.0.0.1:{engine_port}/health", sim)
        config = json.loads((REPO / "providers.json").read_text())
        config["engine_pools"][0]["replicas"] = [{"url": f"http://127.0.0.1:{engine_port}/v1", "slots": 64}]
        (directory / "providers.json").write_text(json.dumps(config))

    @property
    def redis_url(self) -> str:
        assert self.redis_port is not None
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen:
        self.starts[name] += 1
        log = open(self.directory / f"{name}-{self.starts[name]}.log", "w")
        self.logs.append(log)
        process = subprocess.Popen(command, env=self.environment, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start_serve(self, *extra: str) -> subprocess.Popen:
        """serve on the stack's one port (a restart takes the port back), on the one database."""
        command = [binary(), "serve", "--config", str(self.directory / "providers.json"), "--db", str(self.database),
                   "--port", str(self.proxy_port), "--grace-period", "5"]
        if self.redis_port is not None:
            command += ["--redis", self.redis_url]
        self.serve = self._spawn(command + list(extra), "serve")
        wait_for(self.proxy + "/health", self.serve)
        return self.serve

    def start_meter(self, *extra: str) -> subprocess.Popen:
        help_text = subprocess.run([binary(), "meter", "--help"], capture_output=True, text=True).stdout
        if "--redis" not in help_text:
            pytest.fail("`switchyard meter` does not exist in this build (rebuild: another engineer is adding it)")
        self.meter = self._spawn([binary(), "meter", "--redis", self.redis_url, "--db", str(self.database),
                                  *extra], "meter")
        return self.meter

    def start_redis(self) -> subprocess.Popen:
        """redis-server with an append-only file in the stack's folder: stopped with SIGTERM
        and started again on the same port, it has kept the usage stream."""
        server = shutil.which("redis-server")
        if server is None:
            pytest.fail("redis-server is not installed: scripts/install-deps.sh installs it")
        if self.redis_port is None:
            self.redis_port = free_port()
        self.redis = self._spawn([server, "--port", str(self.redis_port), "--save", "", "--appendonly", "yes",
                                  "--dir", str(self.directory)], "redis")
        poll(lambda: self.redis_cli("ping") == "PONG" or self._exited(self.redis), 10, "redis-server answers PING")
        return self.redis

    def redis_cli(self, *args: str) -> str:
        result = subprocess.run(["redis-cli", "-p", str(self.redis_port), *args], capture_output=True, text=True)
        return result.stdout.strip()

    @staticmethod
    def _exited(process: subprocess.Popen) -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[:2]} exited with {process.returncode}")
        return False

    def kill(self, process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def close(self) -> None:
        for process in reversed(self.processes):
            stop(process)
        for log in self.logs:
            log.close()

    def log_tails(self) -> str:
        """The end of each serve and meter log, for a failure's message."""
        return "\n".join(f"--- {path.name}:\n" + path.read_text(errors="replace")[-1500:]
                         for path in sorted(self.directory.glob("*.log")) if path.name.startswith(("serve", "meter")))

    def make_key(self) -> tuple[str, str]:
        """A tenant of the tier without limits, and a key of it: (tenant id, secret)."""
        tenant = httpx.post(self.proxy + "/admin/v1/tenants", json={"name": f"m-{time.monotonic_ns()}", "tier": "enterprise"},
                            headers=HEADERS, timeout=30)
        assert tenant.status_code == 201, tenant.text
        return tenant.json()["id"], tenant_key(self.proxy, tenant.json()["id"])["key"]


@pytest.fixture()
def stack(tmp_path):
    running = Stack(tmp_path)
    try:
        yield running
    finally:
        running.close()


# MARK: - Load


class Load:
    """Threads sending chat completions (every other one streamed) to the proxy until
    stopped, through its restarts. `answered` maps the request id of every complete 200
    to whether it was streamed."""

    def __init__(self, url: str, key: str, threads: int = THREADS):
        self.url, self.key = url, key
        self.answered: dict[str, bool] = {}
        self.repeated: list[str] = []
        # What no proxy outage explains: an answer without an id, a 200 that is not JSON.
        self.failures: list[str] = []
        self.outcomes: Counter = Counter()
        self.in_flight = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.workers = [threading.Thread(target=self._run, args=(index,), daemon=True) for index in range(threads)]

    def __enter__(self) -> "Load":
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for worker in self.workers:
            worker.join(timeout=30)
        assert not any(worker.is_alive() for worker in self.workers), "a load thread did not stop"

    def count(self) -> int:
        with self.lock:
            return len(self.answered)

    def wait_for_answers(self, count: int, timeout: float = 60.0) -> None:
        """Waits until `count` requests in all were answered in full."""
        poll(lambda: self.count() >= count, timeout,
             f"{count} complete answers (have {self.count()}; outcomes {dict(self.outcomes)})")

    def _run(self, index: int) -> None:
        sent = 0
        with httpx.Client(timeout=httpx.Timeout(15.0)) as client:
            while not self.stopping.is_set():
                streamed = (index + sent) % 2 == 1
                sent += 1
                with self.lock:
                    self.in_flight += 1
                try:
                    outcome = self._one(client, streamed)
                except httpx.HTTPError as error:
                    # Refused or cut off: the proxy is down, or was killed mid-answer.
                    outcome = type(error).__name__
                except Exception as error:  # noqa: BLE001 - reported by the test, not lost with the thread
                    outcome = "failure"
                    with self.lock:
                        self.failures.append(repr(error))
                finally:
                    with self.lock:
                        self.in_flight -= 1
                with self.lock:
                    self.outcomes[outcome] += 1
                if outcome != 200:
                    self.stopping.wait(0.02)

    def _one(self, client: httpx.Client, streamed: bool):
        body = {"model": "chat-small", "messages": [{"role": "user", "content": "meter me"}], "max_tokens": 8}
        headers = {"authorization": f"Bearer {self.key}"}
        if not streamed:
            response = client.post(self.url + "/v1/chat/completions", json=body, headers=headers)
            if response.status_code == 200 and response.json().get("choices"):
                self._answered(response.headers["x-request-id"], False)
            return response.status_code
        body.update(stream=True, stream_options={"include_usage": True})
        with client.stream("POST", self.url + "/v1/chat/completions", json=body, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                return response.status_code
            request_id = response.headers["x-request-id"]
            for line in response.iter_lines():
                if line.strip() == "data: [DONE]":
                    # The client has the whole answer: it must be metered from here on,
                    # even when the connection breaks before the stream's end.
                    self._answered(request_id, True)
        return 200

    def _answered(self, request_id: str, streamed: bool) -> None:
        with self.lock:
            if request_id in self.answered:
                self.repeated.append(request_id)
            self.answered[request_id] = streamed


# MARK: - The ledger


def query(database: Path, sql: str, *arguments) -> list[tuple]:
    """The rows of one query on the ledger file, read beside the processes writing it."""
    with closing(sqlite3.connect(database, timeout=10)) as db:
        return db.execute(sql, arguments).fetchall()


def ledger_ids(database: Path) -> Counter:
    """How many times the ledger holds each request id."""
    return Counter(row[0] for row in query(database, "SELECT request_id FROM usage_events"))


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    assert found, f"/metrics has no {name}"
    return float(found.group(1))


def spooled(stack: Stack) -> list[Path]:
    return sorted(stack.spool.glob("replica-*/*.events"))


def assert_metered_exactly_once(stack: Stack, load: Load, tenant_id: str, *, watch: list[subprocess.Popen]) -> None:
    """Every complete answer of `load` is in the ledger once, the admin API returns each,
    the usage report counts what the ledger holds, and nothing is left waiting."""
    assert not load.failures, f"answers no outage explains: {load.failures[:5]}"
    assert not load.repeated, f"the proxy gave one request id to several answers: {load.repeated[:5]}"
    answered = dict(load.answered)
    assert answered, "the load got no complete answer"

    def all_there():
        for process in watch:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[:2]} exited with {process.returncode}")
        return not (set(answered) - set(ledger_ids(stack.database)))

    try:
        poll(all_there, DELIVERY_TIMEOUT, "every answered request reaches the ledger")
    except AssertionError:
        missing = sorted(set(answered) - set(ledger_ids(stack.database)))
        if not missing:
            raise
        raise AssertionError(
            f"{len(missing)} of {len(answered)} answered requests are not in the ledger, e.g. {missing[:3]} "
            f"(streamed: {[answered[id] for id in missing[:10]]}); spool now: {[str(p) for p in spooled(stack)]}\n"
            + stack.log_tails()
        ) from None

    stored = ledger_ids(stack.database)
    twice = {id: n for id, n in stored.items() if n > 1}
    assert not twice, f"metered more than once: {list(twice.items())[:5]}"
    [(events, distinct)] = query(stack.database, "SELECT count(*), count(DISTINCT request_id) FROM usage_events")
    [(tenant_events,)] = query(stack.database, "SELECT count(*) FROM usage_events WHERE tenant_id = ?", tenant_id)
    assert events == distinct == len(stored)

    # The admin API reads each request back, as it was answered.
    with httpx.Client(timeout=10, headers=HEADERS, limits=httpx.Limits(max_connections=8)) as client:
        def check(item: tuple[str, bool]) -> None:
            request_id, streamed = item
            response = client.get(stack.proxy + f"/admin/v1/usage/events/{request_id}")
            assert response.status_code == 200, (request_id, response.status_code, response.text)
            event = response.json()
            assert (event["request_id"], event["tenant_id"]) == (request_id, tenant_id), event
            assert (event["status"], event["streamed"], event["client_aborted"]) == (200, streamed, False), event

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(check, answered.items()))
        absent = client.get(stack.proxy + "/admin/v1/usage/events/req-not-a-request-of-this-proxy")
        assert absent.status_code == 404, absent.text
        report = client.get(stack.proxy + f"/admin/v1/usage?tenant={tenant_id}&group_by=tenant").json()
    assert sum(group["requests"] for group in report["data"]) == tenant_events >= len(answered), report

    # Nothing is left waiting: the spool is empty, and the proxy says so.
    poll(lambda: not spooled(stack), DELIVERY_TIMEOUT, f"the spool empties (holds {spooled(stack)})")
    poll(lambda: metric(stack.proxy, "switchyard_usage_events_pending") == 0, DELIVERY_TIMEOUT,
         "switchyard_usage_events_pending is 0")
    assert metric(stack.proxy, "switchyard_usage_events_dropped") == 0
    if stack.redis_port is not None:
        # The meter acknowledged every entry it stored.
        poll(lambda: stack.redis_cli("XPENDING", STREAM_KEY, METER_GROUP).splitlines()[:1] == ["0"], DELIVERY_TIMEOUT,
             f"the meters' group has nothing pending ({stack.redis_cli('XPENDING', STREAM_KEY, METER_GROUP)!r})")


def kill_under_load(stack: Stack, load: Load, process: subprocess.Popen, answers: int) -> None:
    """SIGKILLs `process` once `answers` requests were answered, with requests in flight."""
    load.wait_for_answers(answers)
    with load.lock:
        in_flight = load.in_flight
    stack.kill(process)
    assert in_flight > 0, "requests were in flight at the kill"


# MARK: - Scenarios


@pytest.mark.parametrize("run", range(3))
def test_embedded_serve_killed_under_load_meters_every_answer_once(stack, run):
    stack.start_serve()
    tenant_id, key = stack.make_key()
    with Load(stack.proxy, key) as load:
        kill_under_load(stack, load, stack.serve, random.randint(*ANSWERS_BEFORE))
        before = load.count()
        # The load goes on through the restart: the new process delivers what the killed
        # one left in the spool while it meters new requests.
        stack.start_serve()
        load.wait_for_answers(before + ANSWERS_AFTER)
    assert_metered_exactly_once(stack, load, tenant_id, watch=[stack.serve])


@pytest.mark.parametrize("run", range(3))
def test_serve_on_redis_killed_under_load_meters_every_answer_once(stack, run):
    stack.start_redis()
    stack.start_serve()
    stack.start_meter()
    tenant_id, key = stack.make_key()
    with Load(stack.proxy, key) as load:
        kill_under_load(stack, load, stack.serve, random.randint(*ANSWERS_BEFORE))
        before = load.count()
        stack.start_serve()
        load.wait_for_answers(before + ANSWERS_AFTER)
    assert_metered_exactly_once(stack, load, tenant_id, watch=[stack.serve, stack.meter])


@pytest.mark.parametrize("moment", ["holding a batch", "amid the backlog"])
def test_meter_killed_while_it_consumes_stores_every_answer_once(stack, moment):
    stack.start_redis()
    stack.start_serve()
    # Restarted under the same name, the meter stores the batch it was killed in at once
    # (under another name, another meter takes it over only once it has idled a minute).
    stack.start_meter("--consumer", "e2e-meter")
    tenant_id, key = stack.make_key()
    with Load(stack.proxy, key) as load:
        load.wait_for_answers(random.randint(*ANSWERS_BEFORE) // 2)
        poll(lambda: sum(ledger_ids(stack.database).values()) > 50, DELIVERY_TIMEOUT, "the meter stores events")
        # A backlog builds while the meter is stopped; its blocked read is handed the
        # first of it, which it holds, unacknowledged.
        stack.meter.send_signal(signal.SIGSTOP)
        load.wait_for_answers(load.count() + ANSWERS_AFTER)
        poll(lambda: stack.redis_cli("XPENDING", STREAM_KEY, METER_GROUP).splitlines()[:1] != ["0"], DELIVERY_TIMEOUT,
             "the stopped meter holds entries it was handed")
        if moment == "amid the backlog":
            # Killed a moment after it resumes: with a batch read and not stored, being
            # stored, or stored and not acknowledged.
            stack.meter.send_signal(signal.SIGCONT)
            time.sleep(random.uniform(0, 0.03))  # where in the backlog: a kill's moment, not a wait for a state
        stack.kill(stack.meter)
        load.wait_for_answers(load.count() + ANSWERS_AFTER)
        stack.start_meter("--consumer", "e2e-meter")
        load.wait_for_answers(load.count() + ANSWERS_AFTER)
    assert_metered_exactly_once(stack, load, tenant_id, watch=[stack.serve, stack.meter])


def test_events_spooled_while_redis_is_stopped_arrive_once_it_is_back(stack):
    stack.start_redis()
    stack.start_serve()
    stack.start_meter()
    tenant_id, key = stack.make_key()
    with Load(stack.proxy, key) as load:
        load.wait_for_answers(random.randint(*ANSWERS_BEFORE))
        stop(stack.redis)  # SIGTERM: redis-server writes its append-only file and exits
        before = load.count()
        # The proxy keeps serving on its own limits; the events wait in its spool.
        load.wait_for_answers(before + ANSWERS_AFTER)
        poll(lambda: spooled(stack), DELIVERY_TIMEOUT, "events wait in the spool while Redis is away")
        assert metric(stack.proxy, "switchyard_usage_events_pending") > 0
        stack.start_redis()
        load.wait_for_answers(load.count() + ANSWERS_AFTER)
    assert_metered_exactly_once(stack, load, tenant_id, watch=[stack.serve, stack.meter])
