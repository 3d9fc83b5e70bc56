"""What an operator sees of `switchyard serve` under stress and at its edges: streams still
open when the shutdown grace period runs out end with a final error event and are
metered as such, the admin token banner shows at once, and the database is private."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from conftest import ADMIN_TOKEN, BCRYPT_COST, REPO, binary, free_port, start_deployment, stop, tenant_key, wait_for


def make_key(deployment) -> str:
    tenant = deployment.cli_json("tenant", "create", "--name", f"hard-{time.monotonic_ns()}", "--tier", "enterprise")
    return tenant_key(deployment, tenant["id"])["key"]


def test_streams_cut_by_the_end_of_the_grace_period_end_with_an_error_event_and_are_metered():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-grace-"))
    # 400 tokens at 20 a second take 20 s; the grace period is 2 s.
    deployment = start_deployment(directory, tokens_per_second="20", serve_args=("--grace-period", "2"))
    try:
        key = make_key(deployment)
        body = {"model": "chat-small", "stream": True, "max_tokens": 400,
                "messages": [{"role": "user", "content": "a long answer please"}]}
        with httpx.stream("POST", deployment.proxy + "/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {key}"}, timeout=60) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert "chat.completion.chunk" in first
            deployment.serve.send_signal(signal.SIGTERM)
            events = [line[6:] for line in lines if line.startswith("data: ")]
        assert events, "the stream ended without a final event"
        assert "[DONE]" not in events
        final = json.loads(events[-1])
        assert final["error"]["code"] == "shutting_down", final
        assert final["error"]["type"] == "server_error"
        assert request_id in final["error"]["message"]
        assert deployment.serve.wait(timeout=60) == 0
        with sqlite3.connect(deployment.database) as db:
            status, error_type, streamed = db.execute(
                "SELECT status, error_type, streamed FROM usage_events WHERE request_id = ?", (request_id,)
            ).fetchone()
        assert (status, error_type, streamed) == (503, "shutting_down", 1)
    finally:
        stop(deployment.serve)
        stop(deployment.sim)
        shutil.rmtree(directory, ignore_errors=True)


def start_bare_serve(directory: Path, database: Path, port: int) -> subprocess.Popen:
    """serve with no admin token in the environment, writing to files (block-buffered
    output, as under a service manager)."""
    config = json.loads((REPO / "providers.json").read_text())
    (directory / "providers.json").write_text(json.dumps(config))
    environment = {key: value for key, value in os.environ.items()
                   if key != "SWITCHYARD_ADMIN_TOKEN" and not key.endswith("_API_KEY")}
    environment["SWITCHYARD_BCRYPT_COST"] = BCRYPT_COST
    return subprocess.Popen(
        [binary(), "serve", "--config", str(directory / "providers.json"), "--db", str(database), "--port", str(port)],
        env=environment, stdout=open(directory / "serve.out", "w"), stderr=open(directory / "serve.log", "w"),
    )


def test_the_admin_token_banner_shows_at_once_and_the_database_is_private():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-private-"))
    state = directory / "var"
    database = state / "switchyard.sqlite"
    port = free_port()
    old_umask = os.umask(0o022)
    try:
        serve = start_bare_serve(directory, database, port)
        try:
            wait_for(f"http://127.0.0.1:{port}/health", serve)
            token = (state / "switchyard.admin-token").read_text().strip()
            # While serve runs, not only once it exits.
            assert token in (directory / "serve.out").read_text()
            assert token in (directory / "serve.log").read_text()
            tenant = httpx.post(f"http://127.0.0.1:{port}/admin/v1/tenants", json={"name": "p", "tier": "enterprise"},
                                headers={"authorization": f"Bearer {token}"}, timeout=10)
            assert tenant.status_code == 201
            assert stat.S_IMODE(state.stat().st_mode) == 0o700
            for path in [database, Path(f"{database}-wal"), Path(f"{database}-shm")]:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        finally:
            stop(serve)
        assert "readable by other users" not in (directory / "serve.out").read_text()

        # An operator's copy left world-readable is pointed out at the next start.
        os.chmod(database, 0o644)
        serve = start_bare_serve(directory, database, port)
        try:
            wait_for(f"http://127.0.0.1:{port}/health", serve)
            log = (directory / "serve.out").read_text() + (directory / "serve.log").read_text()
            assert "readable by other users" in log and "644" in log
            assert "Generated an admin token" not in log, "an existing token is never shown again"
        finally:
            stop(serve)
    finally:
        os.umask(old_umask)
        shutil.rmtree(directory, ignore_errors=True)
