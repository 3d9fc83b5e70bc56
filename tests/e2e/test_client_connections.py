"""Client connections against a running `switchyard serve`, on raw sockets: quiet and slow
clients are closed by the timeouts while the server keeps answering everyone else, a
slow reader of a stream is not, `Expect: 100-continue` is answered, malformed chunked
bodies get an OpenAI-shaped 400, and neither the file-descriptor limit nor a flood of
silent connections locks clients out."""

from __future__ import annotations

import json
import resource
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import start_deployment, stop, tenant_key

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
KEEP_ALIVE_TIMEOUT = 3
SEND_TIMEOUT = 2
# Every wait for the server to act is bounded by this, far above the timeouts.
PATIENCE = 30


def make_key(deployment) -> str:
    tenant = deployment.cli_json("tenant", "create", "--name", f"conn-{time.monotonic_ns()}", "--tier", "enterprise")
    return tenant_key(deployment, tenant["id"])["key"]


@pytest.fixture(scope="module")
def server():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-conn-"))
    running = start_deployment(directory, tokens_per_second="20", serve_args=(
        "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
        "--keep-alive-timeout", str(KEEP_ALIVE_TIMEOUT), "--send-timeout", str(SEND_TIMEOUT),
        "--max-body-bytes", "65536",
    ))
    running.key = make_key(running)
    try:
        yield running
    finally:
        stop(running.serve)
        stop(running.sim)
        shutil.rmtree(directory, ignore_errors=True)


def connect(deployment) -> socket.socket:
    host, port = deployment.proxy.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by PATIENCE)."""
    data = b""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    else:
        raise AssertionError("the server did not close the connection")
    return data


def response_head_and_body(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def assert_openai_error(data: bytes, status: int) -> dict:
    got, headers, body = response_head_and_body(data)
    assert got == status, data[:300]
    assert headers.get("x-request-id", "").startswith("req_"), headers
    assert "json" in headers.get("content-type", ""), headers
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


class Bystander:
    """Keeps asking for completions on its own connections, recording failures, while a
    test abuses the server: the server must answer others throughout."""

    def __init__(self, deployment):
        self.deployment, self.answered, self.failures = deployment, 0, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        headers = {"authorization": f"Bearer {self.deployment.key}"}
        body = {"model": "chat-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        while not self.stopping.is_set():
            try:
                response = httpx.post(self.deployment.proxy + "/v1/chat/completions", json=body, headers=headers, timeout=20)
                if response.status_code == 200:
                    self.answered += 1
                else:
                    self.failures.append(response.status_code)
            except httpx.HTTPError as error:
                self.failures.append(repr(error))
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(timeout=30)
        assert self.failures == [], self.failures
        assert self.answered > 0


def test_a_silent_connection_is_closed_after_the_header_timeout(server):
    with Bystander(server):
        sock = connect(server)
        opened = time.monotonic()
        data = read_until_closed(sock)
        elapsed = time.monotonic() - opened
    assert data == b"", "nothing is answered to nothing"
    # Timers never fire early; a slow machine may only make it later.
    assert elapsed >= HEADER_TIMEOUT * 0.9, elapsed


def test_a_trickled_request_line_is_closed_however_steadily_it_trickles(server):
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with Bystander(server):
        sock = connect(server)
        opened = time.monotonic()
        sent = 0
        try:
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.25)
        except OSError:
            pass
        data = read_until_closed(sock)
    assert sent < len(request), "the server waited for the whole trickled head"
    assert b"200 OK" not in data
    assert time.monotonic() - opened >= HEADER_TIMEOUT * 0.9


def test_a_stalled_body_is_a_408_and_the_connection_closes(server):
    sock = connect(server)
    sock.sendall(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"model\":".encode()
    )
    error = assert_openai_error(read_until_closed(sock), 408)
    assert error["code"] == "request_timeout"


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200"), first
    idle_since = time.monotonic()
    assert read_until_closed(sock) == b""
    assert time.monotonic() - idle_since >= KEEP_ALIVE_TIMEOUT * 0.9


def test_a_stream_read_slowly_is_not_idle(server):
    """A stream whose client reads less often than every timeout runs to its end."""
    sock = connect(server)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = json.dumps({"model": "chat-small", "stream": True, "max_tokens": 60,
                       "messages": [{"role": "user", "content": "tell me a long story"}]}).encode()
    sock.sendall(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )
    data = b""
    deadline = time.monotonic() + 60
    while b"data: [DONE]" not in data and time.monotonic() < deadline:
        # Longer than the header, body and keep-alive timeouts together.
        time.sleep(max(HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE_TIMEOUT) + 1 if not data else 0.5)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"data: [DONE]" in data, data[-300:]


def test_a_client_that_reads_nothing_is_closed_after_the_send_timeout(server):
    """Pipelined requests whose answers the client never reads fill the socket: the
    connection is closed instead of being held forever."""
    before = timeout_closes(server)
    sock = connect(server)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + PATIENCE
    closed = False
    # What a short send left over goes first: a request cut in two would be malformed, and
    # the server would close for that instead.
    unsent = b""
    while time.monotonic() < deadline:
        try:
            unsent = unsent or request * 64
            written = sock.send(unsent)
            sent += written
            unsent = unsent[written:]
        except BlockingIOError:
            time.sleep(0.2)
        except OSError:
            closed = True
            break
        if sent > 20_000_000:
            break
    if not closed:
        # The server's close can wait behind the answers this side never read (and its
        # kernel's zero-window probes): reading them shows it, as the end of the stream.
        sock.setblocking(True)
        sock.settimeout(PATIENCE)
        try:
            while sock.recv(1 << 20):
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        except OSError:
            pass
    assert closed, "the connection was held open"
    # Closed by the send timeout; or, where the server had answered and written out every
    # request it read before its socket filled (the client's unsent requests held back by
    # the server's full receive window), by the keep-alive timeout. Either way a timeout
    # closed it, and it was this connection: no other is open.
    after = timeout_closes(server)
    assert after["send_timeout"] + after["idle_timeout"] > before["send_timeout"] + before["idle_timeout"], (before, after)


def timeout_closes(server) -> dict[str, int]:
    """The server's count of connections closed by the send and keep-alive timeouts."""
    counts = {"send_timeout": 0, "idle_timeout": 0}
    for line in httpx.get(server.proxy + "/metrics", timeout=PATIENCE).text.splitlines():
        for reason in counts:
            if line.startswith(f'switchyard_connections_closed_total{{reason="{reason}"}}'):
                counts[reason] = int(float(line.split()[-1]))
    return counts


def test_a_client_that_half_closes_after_its_request_still_gets_its_answer(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.shutdown(socket.SHUT_WR)
    data = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert b'{"status":"ok"}' in data


@pytest.mark.parametrize("chunked_body", [
    b"zz\r\n{}\r\n0\r\n\r\n",
    b"-5\r\n{}\r\n0\r\n\r\n",
    b"fffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
    b"2;\x01=x\r\n{}\r\n0\r\n\r\n",
    b"2\r\n{}0\r\n\r\n",
])
def test_malformed_chunked_bodies_are_an_openai_shaped_400_and_the_connection_closes(server, chunked_body):
    sock = connect(server)
    sock.sendall(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunked_body
    )
    error = assert_openai_error(read_until_closed(sock), 400)
    assert error["code"] == "malformed_request"


def test_an_unknown_transfer_coding_is_a_400_and_parse_errors_get_a_body_and_request_id(server):
    for raw in [
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n".encode(),
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    ]:
        sock = connect(server)
        sock.sendall(raw)
        data = read_until_closed(sock)
        status = response_head_and_body(data)[0]
        assert status in (400, 431), data[:300]
        assert_openai_error(data, status)


def test_expect_100_continue_is_answered_at_once_and_an_oversized_body_refused_unsent(server):
    body = json.dumps({"model": "chat-small", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}).encode()
    sock = connect(server)
    sock.sendall(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    sock.settimeout(5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    sock.sendall(body)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")

    big = connect(server)
    big.sendall(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    error = assert_openai_error(read_until_closed(big), 413)
    assert error["code"] == "request_too_large"


def raise_own_descriptor_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))


def test_silent_connections_beyond_the_default_descriptor_limit_do_not_lock_clients_out():
    """Started with a soft limit of 1024, serve raises it to the hard limit, and 1,100
    silent connections leave it answering; the header timeout then closes them all."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 4096:
        pytest.skip("the hard file-descriptor limit here is below 4096")
    raise_own_descriptor_limit(4096)
    directory = Path(tempfile.mkdtemp(prefix="switchyard-nofile-"))
    deployment = start_deployment(
        directory, serve_args=("--header-timeout", "5"),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 4096)),
    )
    silent: list[socket.socket] = []
    try:
        limits = Path(f"/proc/{deployment.serve.pid}/limits").read_text()
        open_files = next(line for line in limits.splitlines() if line.startswith("Max open files")).split()
        assert open_files[3:5] == ["4096", "4096"], open_files
        for _ in range(1100):
            silent.append(connect(deployment))
        answer = httpx.get(deployment.proxy + "/health", timeout=PATIENCE)
        assert answer.status_code == 200
        for sock in silent:
            assert read_until_closed(sock) == b""
        assert httpx.get(deployment.proxy + "/health", timeout=PATIENCE).status_code == 200
    finally:
        for sock in silent:
            sock.close()
        stop(deployment.serve)
        stop(deployment.sim)
        shutil.rmtree(directory, ignore_errors=True)


def test_the_connection_cap_pauses_accepting_says_so_and_recovers():
    directory = Path(tempfile.mkdtemp(prefix="switchyard-cap-"))
    deployment = start_deployment(directory, serve_args=("--max-connections", "20", "--header-timeout", "3"))
    silent: list[socket.socket] = []
    try:
        for _ in range(25):
            silent.append(connect(deployment))
        for sock in silent:
            read_until_closed(sock)
        metrics = httpx.get(deployment.proxy + "/metrics", timeout=PATIENCE).text
        reached = [line for line in metrics.splitlines() if line.startswith("switchyard_connection_limit_reached_total")]
        assert reached and float(reached[0].split()[-1]) >= 1, reached
        closed = [line for line in metrics.splitlines()
                  if line.startswith('switchyard_connections_closed_total{reason="header_timeout"}')]
        assert closed and float(closed[0].split()[-1]) >= 25, closed
        assert "connection limit reached" in (directory / "serve.out").read_text()
    finally:
        for sock in silent:
            sock.close()
        stop(deployment.serve)
        stop(deployment.sim)
        shutil.rmtree(directory, ignore_errors=True)
