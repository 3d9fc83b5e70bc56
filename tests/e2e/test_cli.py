"""The CLI as an operator meets it: the real binary against a real `switchyard serve` on
real ports. Tenants by name, network failures in plain words, a missing admin token with
the subcommand's usage, the start-up log naming what cannot be served and why, the engine
simulator's default port, and the demo's printed commands run from another directory."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_TOKEN, REPO, binary, free_port, start_deployment, stop


def run(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
        stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([binary(), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          input=stdin, timeout=timeout)


def without_admin_token() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if key not in {"SWITCHYARD_ADMIN_TOKEN", "SWITCHYARD_ADMIN_TOKEN_FILE", "SWITCHYARD_TOKEN", "SWITCHYARD_URL"}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_plain(stderr: str) -> None:
    """No NIO text: no system call names, errno numbers or error type names."""
    for fragment in ("errno", "bind(", "connect(", "IOError", "NIOConnectionError", "HTTPClientError",
                     "SocketAddressError", "NIOSSL", "BoringSSL", "Error:"):
        assert fragment not in stderr, stderr


# MARK: - Tenants by name


def test_a_tenant_name_works_wherever_its_id_does(deployment):
    name = unique("acme")
    tenant = deployment.cli_json("tenant", "create", "--name", name, "--tier", "enterprise")

    # Keys are made by the tenant's own users: the org admin's session runs the CLI.
    key = deployment.cli_json("key", "create", "--tenant", name, "--name", "billing-app",
                              token=deployment.org_admin(tenant["id"]))
    assert key["key"].startswith("sk-sy-")
    listed = deployment.cli_json("key", "list", "--tenant", name)
    assert [k["id"] for k in listed["data"]] == [key["id"]]

    response = httpx.post(
        deployment.proxy + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key['key']}"},
        json={"model": "chat-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    deadline = time.time() + 10
    while True:
        by_name = deployment.cli_json("usage", "--tenant", name)
        if by_name["data"] or time.time() > deadline:
            break
        time.sleep(0.1)
    assert by_name["tenant"] == tenant["id"]
    assert [row["requests"] for row in by_name["data"]] == [1]
    assert deployment.cli_json("usage", "--tenant", tenant["id"])["data"] == by_name["data"]
    table = deployment.cli("usage", "--tenant", name).stdout
    assert "chat-small" in table and "(none)" not in table

    limits = deployment.cli_json("tenant", "set-limits", name, "--rpm", "600")
    assert limits["id"] == tenant["id"] and limits["limit_overrides"]["requests_per_minute"] == 600
    pinning = deployment.cli_json("tenant", "set-pinning", name, "chat-small=local-llama-8b")
    assert pinning["id"] == tenant["id"] and pinning["pinning"] == {"chat-small": "local-llama-8b"}

    added = subprocess.run(
        [binary(), "provider-key", "add", "--provider", "openai", "--tenant", name, "--label", unique("dedicated"),
         "--json", "--server", deployment.proxy, "--token", ADMIN_TOKEN],
        input="sk-test-dedicated-0000000000000000\n", capture_output=True, text=True, timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["tenants"] == [tenant["id"]]
    deployment.cli("provider-key", "retire", json.loads(added.stdout)["id"])


def test_report_allocation_fetches_every_page_and_prints_csv_with_the_totals_last(deployment):
    name = unique("report")
    tenant = deployment.cli_json("tenant", "create", "--name", name, "--tier", "enterprise")
    key = deployment.tenant_key(tenant["id"])
    for model in ("chat-small", "chat-small", "embed-small"):
        path, body = (("/v1/embeddings", {"model": model, "input": "hi"}) if model.startswith("embed") else
                      ("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}))
        response = httpx.post(deployment.proxy + path, headers={"authorization": f"Bearer {key['key']}"}, json=body, timeout=30)
        assert response.status_code == 200, response.text
    deadline = time.time() + 10
    while sum(row["requests"] for row in deployment.cli_json("usage", "--tenant", name)["data"]) < 3 and time.time() < deadline:
        time.sleep(0.1)

    # One row a page: the CLI follows the cursor to the end.
    report = deployment.cli_json("report", "allocation", "--tenant", name, "--group-by", "tenant,model", "--limit", "1")
    assert [(row["tenant"], row["model"], row["requests"]) for row in report["data"]] == [
        (tenant["id"], "chat-small", 2), (tenant["id"], "embed-small", 1)]
    assert [row["requests"] for row in report["totals"]] == [3]

    # As bytes: text mode would turn the CSV's CRLFs into newlines.
    result = subprocess.run(
        [binary(), "report", "allocation", "--tenant", name, "--group-by", "tenant,model", "--limit", "1", "--csv",
         "--server", deployment.proxy, "--token", ADMIN_TOKEN], capture_output=True, check=True, timeout=60)
    text = result.stdout.decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert records[0][:4] == ["row", "tenant", "model", "currency"]
    assert [record[:3] for record in records[1:]] == [
        ["group", tenant["id"], "chat-small"], ["group", tenant["id"], "embed-small"], ["total", "", ""]]
    assert records.count(records[0]) == 1

    table = deployment.cli("report", "allocation", "--tenant", name, "--group-by", "model").stdout
    assert "chat-small" in table and "total" in table
    # The shipped engine pool has no price: its cost cannot be allocated.
    refused = deployment.cli("report", "gpu", "--pool", "local-gpu", check=False)
    assert refused.returncode == 1 and "cost_per_hour" in refused.stderr, refused.stderr


def test_an_id_wins_over_a_tenant_named_like_it(deployment):
    first = deployment.cli_json("tenant", "create", "--name", unique("first"), "--tier", "enterprise")
    impostor = deployment.cli_json("tenant", "create", "--name", first["id"], "--tier", "standard")
    assert deployment.cli_json("tenant", "set-limits", first["id"], "--rpm", "7")["id"] == first["id"]
    # The impostor is still reachable by its own id.
    assert deployment.cli_json("tenant", "set-limits", impostor["id"], "--rpm", "8")["id"] == impostor["id"]


@pytest.mark.parametrize("command", [
    ("usage", "--tenant", "TENANT"),
    ("key", "create", "--tenant", "TENANT", "--name", "app"),
    ("key", "list", "--tenant", "TENANT"),
    ("tenant", "set-limits", "TENANT", "--rpm", "10"),
    ("tenant", "set-pinning", "TENANT", "chat-small=local-llama-8b"),
    ("provider-key", "add", "--provider", "openai", "--tenant", "TENANT", "--key-env", "HOME"),
])
def test_an_unknown_tenant_is_an_error_not_an_empty_report(deployment, command):
    missing = unique("nobody")
    result = deployment.cli(*[missing if part == "TENANT" else part for part in command], check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f'switchyard: no tenant is named or has the id "{missing}" (see switchyard tenant list)\n'


# MARK: - Network failures in plain words


def listening_socket() -> socket.socket:
    """A socket bound and listening on a free port, which never accepts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_serve_on_a_port_in_use_says_so(tmp_path):
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        environment = without_admin_token() | {"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN}
        result = run("serve", "--config", str(REPO / "providers.json"), "--db", str(tmp_path / "switchyard.sqlite"),
                     "--port", str(port), env=environment)
    assert result.returncode == 1
    assert result.stderr.endswith(f"switchyard: cannot listen on 127.0.0.1:{port}: address already in use\n"), result.stderr
    assert_plain(result.stderr)


def test_sim_engine_on_a_port_in_use_says_so():
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        result = run("sim-engine", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == f"switchyard: cannot listen on 127.0.0.1:{port}: address already in use\n"


def test_serve_on_an_unknown_host_says_so(tmp_path):
    environment = without_admin_token() | {"SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN}
    result = run("serve", "--config", str(REPO / "providers.json"), "--db", str(tmp_path / "switchyard.sqlite"),
                 "--host", "nonexistent.invalid", "--port", "0", env=environment)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("switchyard: cannot listen on nonexistent.invalid:0: cannot resolve the host name nonexistent.invalid"), last
    assert_plain(result.stderr)


ADMIN_COMMANDS = [
    ("tenant", "list"),
    ("tenant", "create", "--name", "x", "--tier", "enterprise"),
    ("tenant", "set-limits", "acme", "--rpm", "10"),
    ("tenant", "set-pinning", "acme", "chat-small=local-llama-8b"),
    ("key", "create", "--tenant", "acme", "--name", "app"),
    ("key", "list", "--tenant", "acme"),
    ("key", "revoke", "key_x"),
    ("provider-key", "list"),
    ("provider-key", "add", "--provider", "openai", "--key-env", "HOME"),
    ("provider-key", "drain", "pk_x"),
    ("provider-key", "retire", "pk_x"),
    ("provider-key", "enable", "pk_x"),
    ("usage", "--tenant", "acme"),
    ("usage",),
    ("pools",),
    ("report", "allocation"),
    ("report", "gpu", "--pool", "local-gpu"),
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=" ".join)
def test_every_admin_command_says_when_nothing_listens(command):
    url = f"http://127.0.0.1:{free_port()}"
    # Refused is final: a client that kept retrying until its 600 s deadline would
    # outlast run()'s 60 s and fail the test.
    result = run(*command, "--server", url, "--token", ADMIN_TOKEN, "--timeout", "600")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"switchyard: cannot reach Switchyard at {url}: connection refused\n"


def test_an_admin_command_says_when_switchyard_does_not_answer():
    with listening_socket() as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = run("tenant", "list", "--server", url, "--token", ADMIN_TOKEN, "--timeout", "1")
    assert result.returncode == 1
    assert result.stderr == f"switchyard: cannot reach Switchyard at {url}: timed out waiting for the answer\n"


def test_an_admin_command_says_when_the_host_name_does_not_resolve():
    url = "http://nonexistent.invalid:8080"
    result = run("tenant", "list", "--server", url, "--token", ADMIN_TOKEN)
    assert result.returncode == 1
    assert result.stderr.startswith(f"switchyard: cannot reach Switchyard at {url}: cannot resolve the host name nonexistent.invalid"), result.stderr
    assert_plain(result.stderr)


def test_an_admin_command_says_when_https_meets_plain_http(deployment):
    url = deployment.proxy.replace("http://", "https://")
    result = run("tenant", "list", "--server", url, "--token", ADMIN_TOKEN)
    assert result.returncode == 1
    assert result.stderr == (
        f"switchyard: cannot reach Switchyard at {url}: the TLS handshake failed: the server does not speak TLS (use http://)\n"
    )


def test_a_server_that_is_not_a_url_is_a_usage_error():
    result = run("tenant", "list", "--server", "127.0.0.1:8080", "--token", ADMIN_TOKEN)
    assert result.returncode == 64
    assert "--server must be an http:// or https:// URL, not '127.0.0.1:8080'." in result.stderr
    assert "Usage: switchyard tenant list" in result.stderr


# MARK: - A missing admin token


@pytest.mark.parametrize("command", [
    ("key", "create", "--tenant", "acme", "--name", "app"),
    ("tenant", "list"),
    ("tenant", "set-pinning", "acme", "chat-small=local-llama-8b"),
    ("provider-key", "drain", "pk_x"),
    ("usage",),
    ("pools",),
], ids=" ".join)
def test_a_missing_admin_token_shows_the_subcommands_usage(tmp_path, command):
    # From an empty directory, so no var/switchyard.admin-token is found either, and with
    # an empty config home, so no session saved by `switchyard login`.
    result = run(*command, env=without_admin_token() | {"XDG_CONFIG_HOME": str(tmp_path / "config")}, cwd=tmp_path)
    assert result.returncode == 64
    assert result.stderr.startswith(
        "Error: No token: run `switchyard login --server http://127.0.0.1:8080`, or pass --token, set "
        "SWITCHYARD_TOKEN or SWITCHYARD_ADMIN_TOKEN, or point --token-file at the token file.\n"
    ), result.stderr
    assert f"Usage: switchyard {' '.join(part for part in command[:2] if not part.startswith('-'))}" in result.stderr
    assert "switchyard <subcommand>" not in result.stderr


# MARK: - The start-up log


def serve_log(directory: Path) -> str:
    """What serve logged (on standard output) and wrote to standard error."""
    return (directory / "serve.out").read_text() + (directory / "serve.log").read_text()


def test_the_start_up_log_names_each_model_that_cannot_be_served_and_why(deployment):
    log = serve_log(deployment.directory)
    assert "model chat-large is not served: no provider key for deployments openai-gpt-4o (provider openai), " \
           "azure-gpt-4o (provider azure), anthropic-sonnet (provider anthropic); add one with " \
           "`switchyard provider-key add --provider openai|azure|anthropic` and it serves at once, without a restart, " \
           "or set OPENAI_API_KEY or AZURE_OPENAI_API_KEY or ANTHROPIC_API_KEY and restart" in log
    assert "model chat-fast is not served: no provider key for deployment gemini-flash (provider gemini)" in log
    assert "model chat-small is served by local-llama-8b only: no provider key for deployment openai-gpt-4o-mini " \
           "(provider openai); add one with `switchyard provider-key add --provider openai`" in log
    assert "serving models: chat-small, embed-small" in log
    assert "embed-small is" not in log


def test_the_start_up_log_counts_the_provider_keys_in_the_catalogue():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-e2e-cli-"))
    try:
        first = start_deployment(directory)
        try:
            added = subprocess.run(
                [binary(), "provider-key", "add", "--provider", "openai", "--server", first.proxy, "--token", ADMIN_TOKEN],
                input="sk-test-catalogue-0000000000000000\n", capture_output=True, text=True, timeout=60,
            )
            assert added.returncode == 0, added.stderr
        finally:
            stop(first.serve)
            stop(first.sim)
        # The same ledger, with the key in its catalogue and no variable set.
        second = start_deployment(directory)
        try:
            log = serve_log(directory)
        finally:
            stop(second.serve)
            stop(second.sim)
        assert "model chat-large is served by openai-gpt-4o only: no provider key for deployments " \
               "azure-gpt-4o (provider azure), anthropic-sonnet (provider anthropic)" in log
        assert "model chat-small is" not in log
        assert "serving models: chat-large, chat-small, embed-small" in log
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# MARK: - sim-engine's default port


def test_sim_engine_listens_by_default_where_providers_json_expects_it():
    config = json.loads((REPO / "providers.json").read_text())
    urls = [replica["url"] for pool in config["engine_pools"] for replica in pool["replicas"]]
    assert urls == ["http://127.0.0.1:8001/v1"]
    help_text = run("sim-engine", "--help").stdout
    assert re.search(r"--port <port>\s+The port to listen on .*\(default: 8001\)", help_text, re.S), help_text


# MARK: - The demo's printed commands


def test_the_demos_printed_commands_work_from_another_directory(tmp_path):
    state = tmp_path / "demo-state"
    environment = without_admin_token() | {
        "SWITCHYARD_DEMO_BIN": binary(),
        "SWITCHYARD_DEMO_DIR": str(state),
        "SWITCHYARD_PORT": str(free_port()),
        "SWITCHYARD_ENGINE_PORT": str(free_port()),
    }
    repo_var = sorted(path.name for path in (REPO / "var").rglob("*")) if (REPO / "var").exists() else []
    try:
        started = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True,
                                 env=environment, cwd="/", timeout=120)
        assert started.returncode == 0, started.stdout + started.stderr
        lines = started.stdout.splitlines()

        def command(prefix: str) -> str:
            """The printed command starting with `prefix`, its continuation lines joined."""
            start = next(index for index, line in enumerate(lines) if line.strip().startswith(prefix))
            parts = [lines[start]]
            while parts[-1].endswith("\\"):
                start += 1
                parts.append(lines[start])
            return "\n".join(parts).strip()

        shell_env = without_admin_token() | {"OPENAI_API_KEY": "sk-test-demo-0000000000000000"}

        def shell(text: str) -> subprocess.CompletedProcess:
            return subprocess.run(["bash", "-c", text], capture_output=True, text=True, env=shell_env, cwd="/", timeout=60)

        curl = shell(command("curl "))
        assert curl.returncode == 0, curl.stderr
        assert json.loads(curl.stdout)["choices"][0]["message"]["content"]

        usage_line = next(line.strip() for line in lines if " usage --tenant demo " in line)
        assert usage_line.startswith("/") and str(state) in usage_line
        deadline = time.time() + 10
        while True:
            usage = shell(usage_line)
            assert usage.returncode == 0, usage.stderr
            if "chat-small" in usage.stdout or time.time() > deadline:
                break
            time.sleep(0.1)
        assert usage.stdout.startswith("GROUP") and "chat-small" in usage.stdout, usage.stdout

        added = shell(command('echo "$OPENAI_API_KEY" |'))
        assert added.returncode == 0, added.stderr
        assert "my-account" in added.stdout

        stop_line = next(line for line in lines if line.startswith("Stop it with: ")).removeprefix("Stop it with: ")
        pids = [int((state / "demo" / f"{name}.pid").read_text()) for name in ("switchyard", "sim-engine")]
        stopped = shell(stop_line)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        deadline = time.time() + 30
        while any(alive(pid) for pid in pids) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids)
    finally:
        for pid_file in (state / "demo").glob("*.pid"):
            pid = int(pid_file.read_text())
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # The demo kept to its own directory.
    after = sorted(path.name for path in (REPO / "var").rglob("*")) if (REPO / "var").exists() else []
    assert after == repo_var
    assert (state / "switchyard.sqlite").exists()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; nohup's children are reaped by init, but be sure.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
