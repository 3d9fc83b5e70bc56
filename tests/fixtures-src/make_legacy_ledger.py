#!/usr/bin/env python3
"""Makes Tests/Fixtures/ledger/legacy-v4.sqlite and legacy-v4.json: a ledger written by a
real `switchyard serve` (schema migrations v1-v4), for migration tests that check a
database from the field still opens with its tenants, keys and usage intact.

Usage: SWITCHYARD_BIN=/path/to/switchyard .venv/bin/python tests/fixtures-src/make_legacy_ledger.py

The fixture stands for databases in the field: never regenerate it with a newer binary.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "Tests" / "Fixtures" / "ledger"
ADMIN_TOKEN = "legacy-fixture-admin-token-0123456789"
# Fixture-only master key (64 hex characters) sealing the provider key and webhook secrets.
MASTER_KEY = hashlib.sha256(b"switchyard legacy-v4 ledger fixture").hexdigest()
PROVIDER_SECRET = "sk-legacy-fixture-0000000000000000000000000000abcd"
MODEL = "chat-small"


def binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN", "/tmp/sy-main/switchyard")
    if not Path(path).exists():
        sys.exit(f"switchyard binary not found at {path}")
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


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Admin:
    def __init__(self, base: str):
        self.client = httpx.Client(
            base_url=base + "/admin/v1", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=15
        )

    def call(self, method: str, path: str, body=None, expect=(200, 201)) -> dict:
        response = self.client.request(method, path, json=body) if body is not None or method in ("PUT", "POST") \
            else self.client.request(method, path)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else {}


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="switchyard-legacy-ledger-"))
    engine_port, proxy_port = free_port(), free_port()
    sim = subprocess.Popen(
        [binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0",
         "--tokens-per-second", "0", "--slots", "8"],
        stdout=subprocess.DEVNULL, stderr=open(directory / "sim.log", "w"),
    )
    serve = None
    try:
        wait_for(f"http://127.0.0.1:{engine_port}/health", sim)
        config = json.loads((REPO / "providers.json").read_text())
        for pool in config["engine_pools"]:
            for replica in pool["replicas"]:
                replica["url"] = f"http://127.0.0.1:{engine_port}/v1"
        (directory / "providers.json").write_text(json.dumps(config))
        database = directory / "switchyard.sqlite"
        environment = {
            key: value for key, value in os.environ.items()
            if key not in {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                           "SWITCHYARD_REDIS_URL"}
        }
        environment.update({
            "SWITCHYARD_CONFIG": str(directory / "providers.json"),
            "SWITCHYARD_DB": str(database),
            "SWITCHYARD_PORT": str(proxy_port),
            "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN,
            "SWITCHYARD_MASTER_KEY": MASTER_KEY,
        })
        serve = subprocess.Popen(
            [binary(), "serve", "--grace-period", "20", "--db", str(database)],
            env=environment,
            stdout=open(directory / "serve.out", "w"), stderr=open(directory / "serve.log", "w"),
        )
        proxy = f"http://127.0.0.1:{proxy_port}"
        wait_for(proxy + "/health", serve)
        admin = Admin(proxy)

        # Tenants, limits, pinning.
        alpha = admin.call("POST", "/tenants", {"name": "Legacy Alpha", "tier": "enterprise"})
        beta = admin.call("POST", "/tenants", {"name": "Legacy Beta", "tier": "standard"})
        limits = {"requests_per_minute": 1200, "tokens_per_minute": 500000, "concurrent_requests": 32}
        alpha = admin.call("PUT", f"/tenants/{alpha['id']}/limits", limits)
        pinning = {MODEL: "local-llama-8b"}
        alpha = admin.call("PUT", f"/tenants/{alpha['id']}/pinning", pinning)

        # Tenant keys: two for Alpha (the first revoked), one for Beta.
        alpha_old = admin.call("POST", f"/tenants/{alpha['id']}/keys", {"name": "alpha-old"})
        alpha_live = admin.call("POST", f"/tenants/{alpha['id']}/keys", {"name": "alpha-live"})
        beta_live = admin.call("POST", f"/tenants/{beta['id']}/keys", {"name": "beta-live"})
        revoked = admin.call("DELETE", f"/keys/{alpha_old['id']}")

        # A provider key, drained.
        provider_key = admin.call("POST", "/provider-keys", {
            "provider": "openai", "key": PROVIDER_SECRET, "label": "legacy openai key", "weight": 3,
        })
        provider_key = admin.call("POST", f"/provider-keys/{provider_key['id']}/drain", {})

        # Budget and webhook for Alpha.
        budget_body = {"period": "month", "limit_tokens": 10_000_000, "limit_micros": 50_000_000,
                       "soft_thresholds": [0.5, 0.8], "action": "block"}
        budget = admin.call("PUT", f"/tenants/{alpha['id']}/budget", budget_body)
        webhook = admin.call("POST", f"/tenants/{alpha['id']}/webhooks",
                             {"url": "https://hooks.example.com/switchyard/legacy-alpha"})

        # Traffic: 3 calls as Alpha, 2 as Beta.
        completions = []
        for key, count in ((alpha_live["key"], 3), (beta_live["key"], 2)):
            for index in range(count):
                response = httpx.post(
                    proxy + "/v1/chat/completions",
                    headers={"authorization": f"Bearer {key}"},
                    json={"model": MODEL, "max_tokens": 16 + index,
                          "messages": [{"role": "user", "content": f"legacy fixture call {index}"}]},
                    timeout=30,
                )
                if response.status_code != 200:
                    raise RuntimeError(f"chat completion -> {response.status_code}: {response.text}")
                completions.append(response.json().get("usage"))

        alpha_keys = admin.call("GET", f"/tenants/{alpha['id']}/keys")["data"]
        beta_keys = admin.call("GET", f"/tenants/{beta['id']}/keys")["data"]
        tenants = {t["id"]: t for t in admin.call("GET", "/tenants")["data"]}

        code = stop(serve)
        serve = None
        if code != 0:
            raise RuntimeError(f"serve exited with {code}; see {directory / 'serve.log'}")

        # Merge the write-ahead log and compact, then copy.
        # The file keeps the WAL journal mode serve gave it, as databases in the field do.
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("VACUUM")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        for suffix in ("-wal", "-shm"):
            leftover = Path(str(database) + suffix)
            if leftover.exists() and leftover.stat().st_size > 0:
                raise RuntimeError(f"{leftover} is not empty after the checkpoint")
        OUT.mkdir(parents=True, exist_ok=True)
        target = OUT / "legacy-v4.sqlite"
        shutil.copyfile(database, target)

        # Describe what is in it, read from the copy as an immutable file (so no -wal or
        # -shm file appears beside the fixture).
        db = sqlite3.connect(f"file:{target}?immutable=1", uri=True)
        db.row_factory = sqlite3.Row
        migrations = [row[0] for row in db.execute("SELECT identifier FROM grdb_migrations ORDER BY rowid")]
        usage = {}
        for row in db.execute(
            "SELECT tenant_id, COUNT(*) AS events, SUM(prompt_tokens) AS prompt_tokens, "
            "SUM(completion_tokens) AS completion_tokens, SUM(cost_micros) AS cost_micros "
            "FROM usage_events GROUP BY tenant_id ORDER BY tenant_id"
        ):
            usage[row["tenant_id"]] = {k: row[k] for k in row.keys() if k != "tenant_id"}
        budget_usage = [
            {k: row[k] for k in row.keys()}
            for row in db.execute("SELECT * FROM budget_usage ORDER BY scope_kind, scope_id, period_start")
        ]
        counts = {
            name: db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
        }
        db.close()

        def key_entry(listed: dict, secret: str | None) -> dict:
            entry = {
                "id": listed["id"], "tenant_id": listed["tenant_id"], "name": listed["name"],
                "prefix": listed["prefix"], "status": listed["status"],
                "revoked": listed.get("revoked_at") is not None, "revoked_at": listed.get("revoked_at"),
                "created_at": listed["created_at"],
            }
            if secret is not None:
                entry["secret"] = secret
            return entry

        secrets = {alpha_live["id"]: alpha_live["key"], beta_live["id"]: beta_live["key"]}

        def tenant_entry(tenant_id: str) -> dict:
            tenant = tenants[tenant_id]
            return {
                "id": tenant_id, "name": tenant["name"], "tier": tenant["tier"],
                "limit_overrides": limits if tenant_id == alpha["id"] else None,
                "pinning": pinning if tenant_id == alpha["id"] else {},
                "admin_body": tenant,
                "usage": usage.get(tenant_id, {"events": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_micros": 0}),
            }

        description = {
            "description": "Ledger written by switchyard serve at commit fbdcdcb (schema migrations v1-v4); "
                           "made by tests/fixtures-src/make_legacy_ledger.py. Never regenerate with a newer binary.",
            "commit": "fbdcdcb",
            "grdb_migrations": migrations,
            "master_key_hex": MASTER_KEY,
            "master_key_env": "SWITCHYARD_MASTER_KEY",
            "admin_token": ADMIN_TOKEN,
            "tenants": {"alpha": tenant_entry(alpha["id"]), "beta": tenant_entry(beta["id"])},
            "tenant_keys": [key_entry(k, secrets.get(k["id"])) for k in alpha_keys + beta_keys],
            "revoked_key_id": revoked["id"],
            "provider_key": {
                "id": provider_key["id"], "provider": provider_key["provider"], "label": provider_key["label"],
                "state": provider_key.get("state"), "last_four": provider_key.get("last_four"),
                "weight": provider_key.get("weight"), "secret": PROVIDER_SECRET, "admin_body": provider_key,
            },
            "budget": {
                "tenant_id": alpha["id"], "scope": "tenant", "request": budget_body, "admin_body": budget,
                "budget_usage_rows": budget_usage,
            },
            "webhook": {
                "id": webhook["id"], "tenant_id": webhook["tenant_id"], "url": webhook["url"],
                "events": webhook["events"], "secret": webhook.get("secret"),
            },
            "usage_events_total": sum(u["events"] for u in usage.values()),
            "table_row_counts": counts,
            "journal_mode_in_header": "wal",
            "completion_usage_reported": completions,
        }
        (OUT / "legacy-v4.json").write_text(json.dumps(description, indent=2, sort_keys=False) + "\n")
        print(f"wrote {target} ({target.stat().st_size} bytes) and {OUT / 'legacy-v4.json'}")
    finally:
        if serve is not None:
            stop(serve)
        stop(sim)
        if os.environ.get("KEEP_TMP"):
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
