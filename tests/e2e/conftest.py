"""Fixtures that run real `switchyard sim-engine` and `switchyard serve` processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef"


def binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN", str(REPO / ".build" / "debug" / "switchyard"))
    if not Path(path).exists():
        pytest.fail(f"switchyard binary not found at {path}; build it first (swift build)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Deployment:
    """A running simulator and proxy, with the paths and URLs tests need."""

    proxy: str
    engine: str
    directory: Path
    database: Path
    serve: subprocess.Popen
    sim: subprocess.Popen

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [binary(), *args, "--server", self.proxy, "--token", ADMIN_TOKEN],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def cli_json(self, *args: str) -> dict:
        return json.loads(self.cli(*args, "--json").stdout)

    def admin(self, path: str) -> dict:
        response = httpx.get(self.proxy + path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        response.raise_for_status()
        return response.json()


def start_deployment(
    directory: Path,
    *,
    tokens_per_second: str = "0",
    ttft_ms: str = "0",
    serve_args: tuple[str, ...] = (),
    environment_overrides: dict[str, str | None] | None = None,
    preexec_fn=None,
    configure=None,
) -> Deployment:
    """Starts a simulator and `switchyard serve` in front of it. `serve_args` are added to
    serve's command line; `environment_overrides` set (or, with None, unset) variables;
    `configure` may edit the providers.json object before it is written."""
    engine_port, proxy_port = free_port(), free_port()
    sim = subprocess.Popen(
        [binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", ttft_ms,
         "--tokens-per-second", tokens_per_second, "--slots", "8"],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "sim.log", "w"),
    )
    wait_for(f"http://127.0.0.1:{engine_port}/health", sim)
    config = json.loads((REPO / "providers.json").read_text())
    for pool in config["engine_pools"]:
        for replica in pool["replicas"]:
            replica["url"] = f"http://127.0.0.1:{engine_port}/v1"
    config["tiers"].append({"name": "e2e-limited", "priority": 1, "requests_per_minute": 2})
    if configure is not None:
        configure(config)
    (directory / "providers.json").write_text(json.dumps(config))
    database = directory / "switchyard.sqlite"
    environment = {
        key: value for key, value in os.environ.items()
        if key not in {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"}
    }
    environment.update({
        "SWITCHYARD_CONFIG": str(directory / "providers.json"),
        "SWITCHYARD_DB": str(database),
        "SWITCHYARD_PORT": str(proxy_port),
        "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN,
    })
    for name, value in (environment_overrides or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    serve = subprocess.Popen(
        [binary(), "serve", "--grace-period", "20", *serve_args],
        env=environment,
        stdout=open(directory / "serve.out", "w"),
        stderr=open(directory / "serve.log", "w"),
        preexec_fn=preexec_fn,
    )
    proxy = f"http://127.0.0.1:{proxy_port}"
    wait_for(proxy + "/health", serve)
    return Deployment(proxy, f"http://127.0.0.1:{engine_port}", directory, database, serve, sim)


@pytest.fixture(scope="module")
def deployment():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-e2e-"))
    running = start_deployment(directory)
    try:
        yield running
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture()
def slow_deployment():
    """A deployment whose engine paces tokens, for shutdown and abort tests."""
    directory = Path(tempfile.mkdtemp(prefix="switchyard-e2e-slow-"))
    running = start_deployment(directory, tokens_per_second="25", ttft_ms="20")
    try:
        yield running
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)
