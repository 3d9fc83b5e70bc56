"""Fixtures that run real `switchyard sim-engine` and `switchyard serve` processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef"
# The cheapest cost serve accepts: every serve the tests start hashes passwords with it.
BCRYPT_COST = "10"
ORG_ADMIN_PASSWORD = "e2e-org-admin-password-0123"


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

    def cli(self, *args: str, check: bool = True, token: str = ADMIN_TOKEN) -> subprocess.CompletedProcess:
        """Runs a CLI command against this proxy, as the admin token or as `token` (a
        session or personal access token)."""
        return subprocess.run(
            [binary(), *args, "--server", self.proxy, "--token", token],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def cli_json(self, *args: str, token: str = ADMIN_TOKEN) -> dict:
        return json.loads(self.cli(*args, "--json", token=token).stdout)

    def admin(self, path: str) -> dict:
        response = httpx.get(self.proxy + path, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def org_admin(self, tenant_id: str) -> str:
        return org_admin_session(self.proxy, tenant_id)

    def tenant_key(self, tenant_id: str, name: str = "app") -> dict:
        return tenant_key(self.proxy, tenant_id, name)


# MARK: - Org admins and tenant keys

# The system admin (the admin token) may not create tenant keys: an org admin does. One
# org admin is invited per (proxy, tenant) and its session kept for the module's tests.
_org_admin_sessions: dict[tuple[str, str], str] = {}


def proxy_url(deployment_or_url: "Deployment | str") -> str:
    return deployment_or_url.proxy if isinstance(deployment_or_url, Deployment) else deployment_or_url.rstrip("/")


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def invite_user(deployment_or_url: "Deployment | str", tenant_id: str, role: str = "org_admin", *,
                token: str = ADMIN_TOKEN, email: str | None = None, name: str = "E2E User",
                password: str = ORG_ADMIN_PASSWORD) -> dict:
    """Invites a user to `tenant_id` (as `token`) and accepts the invite: the session body
    (`token`, `csrf_token`, `user`) of the new user."""
    url = proxy_url(deployment_or_url)
    email = email or f"{role.replace('_', '-')}-{uuid.uuid4().hex[:12]}@e2e.example"
    invite = httpx.post(url + f"/admin/v1/tenants/{tenant_id}/invites", json={"email": email, "role": role},
                        headers=bearer(token), timeout=30)
    assert invite.status_code == 201, invite.text
    accepted = httpx.post(url + f"/auth/invites/{invite.json()['token']}/accept",
                          json={"name": name, "password": password}, timeout=30)
    assert accepted.status_code == 201, accepted.text
    return accepted.json()


def org_admin_session(deployment_or_url: "Deployment | str", tenant_id: str) -> str:
    """The session token of an org admin of `tenant_id`, invited by the admin token the
    first time it is asked for."""
    url = proxy_url(deployment_or_url)
    cached = _org_admin_sessions.get((url, tenant_id))
    if cached is None:
        cached = invite_user(url, tenant_id, "org_admin", name="E2E Org Admin")["token"]
        _org_admin_sessions[(url, tenant_id)] = cached
    return cached


def tenant_key(deployment_or_url: "Deployment | str", tenant_id: str, name: str = "app") -> dict:
    """Creates a tenant key as the tenant's org admin: the key body, whose `key` is the secret."""
    url = proxy_url(deployment_or_url)
    response = httpx.post(url + f"/admin/v1/tenants/{tenant_id}/keys", json={"name": name},
                          headers=bearer(org_admin_session(url, tenant_id)), timeout=30)
    assert response.status_code == 201, response.text
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
        "SWITCHYARD_BCRYPT_COST": BCRYPT_COST,
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


@contextmanager
def running_deployment(prefix: str, **options):
    """A deployment in a folder of its own (`start_deployment`'s options), stopped and
    removed when the block ends."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    running = start_deployment(directory, **options)
    try:
        yield running
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment():
    with running_deployment("switchyard-e2e-") as running:
        yield running


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
