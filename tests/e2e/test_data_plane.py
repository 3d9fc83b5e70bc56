"""The inference data plane under load a unit test cannot make: a thousand streams open at
once through one proxy, every one whole and metered; and a client that stops reading,
which must stall the upstream rather than make the proxy hold the stream."""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import socket
import sqlite3
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest

from conftest import start_deployment, stop, tenant_key
from stream_upstream import StreamUpstream

STREAMS = 1000


def point_engine_at(upstream: StreamUpstream, slots: int):
    def configure(config: dict) -> None:
        for pool in config["engine_pools"]:
            pool["max_queue"] = slots
            for replica in pool["replicas"]:
                replica["url"] = upstream.url
                replica["slots"] = slots
    return configure


@pytest.fixture()
def through(request):
    """A proxy whose engine pool is the test's own upstream (`request.param`: its mode)."""
    upstream = StreamUpstream(request.param, expected=STREAMS)
    directory = Path(tempfile.mkdtemp(prefix="switchyard-e2e-plane-"))
    running = start_deployment(directory, configure=point_engine_at(upstream, STREAMS + 64))
    tenant = running.cli_json("tenant", "create", "--name", f"plane-{request.param}", "--tier", "enterprise")
    key = tenant_key(running, tenant["id"])["key"]
    try:
        yield running, upstream, key
    finally:
        stop(running.serve)
        stop(running.sim)
        upstream.stop()
        shutil.rmtree(directory, ignore_errors=True)


def request_bytes(host: str, key: str, *, stream: bool = True, close: bool = True) -> bytes:
    body = ('{"model":"chat-small","messages":[{"role":"user","content":"hello"}],"max_tokens":8,"stream":%s}'
            % ("true" if stream else "false")).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


def dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


def content(stream: bytes) -> str:
    """The concatenated `delta.content` of a chat stream's events."""
    text = ""
    for event in stream.decode().split("\n\n"):
        if event.startswith("data: {"):
            for choice in json.loads(event[6:]).get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
    return text


def raise_descriptor_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


@pytest.mark.parametrize("through", ["barrier"], indirect=True)
def test_a_thousand_concurrent_streams_each_end_with_done_and_are_metered(through):
    deployment, upstream, key = through
    raise_descriptor_limit(STREAMS * 2 + 256)
    host = deployment.proxy.removeprefix("http://")
    address, port = host.split(":")

    async def one() -> tuple[int, str, bytes]:
        reader, writer = await asyncio.open_connection(address, int(port))
        writer.write(request_bytes(host, key))
        await writer.drain()
        data = await reader.read()  # the proxy closes after the answer (Connection: close)
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split(" ")[1]), headers.get("x-request-id", ""), dechunk(body)

    async def all_of_them():
        return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(STREAMS))), timeout=180)

    answers = asyncio.run(all_of_them())
    # The upstream held every stream until all of them were open: they were carried at once.
    assert upstream.most_open == STREAMS
    assert [status for status, _, _ in answers] == [200] * STREAMS
    for _, request_id, body in answers:
        assert body.endswith(b"data: [DONE]\n\n"), body[-200:]
        assert content(body) == "one two three ", body[:400]
    ids = {request_id for _, request_id, _ in answers}
    assert len(ids) == STREAMS

    deadline = time.monotonic() + 30
    while True:
        with closing(sqlite3.connect(deployment.database, timeout=10)) as db:
            rows = db.execute(
                "SELECT request_id, status, prompt_tokens, completion_tokens, streamed FROM usage_events WHERE model = 'chat-small'"
            ).fetchall()
        metered = {row[0]: row for row in rows if row[0] in ids}
        if len(metered) == STREAMS or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(metered) == STREAMS, f"{STREAMS - len(metered)} streams are not in the ledger"
    assert {(status, prompt, completion, streamed) for _, status, prompt, completion, streamed in metered.values()} \
        == {(200, 7, 3, 1)}


@pytest.mark.parametrize("through", ["flood"], indirect=True)
def test_a_client_that_stops_reading_stalls_the_upstream_instead_of_filling_the_proxy(through):
    deployment, upstream, key = through
    host = deployment.proxy.removeprefix("http://")
    address, port = host.split(":")
    with socket.create_connection((address, int(port))) as client:
        # A small receive window, so the client's own buffer holds little of the stream.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        client.sendall(request_bytes(host, key))
        first = client.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]

        def stalled(previous: int) -> int | None:
            # The upstream's writes have stopped: nothing more was written for a second.
            time.sleep(1.0)
            return upstream.written if upstream.written == previous else None

        deadline = time.monotonic() + 30
        written, settled = upstream.written, None
        while settled is None:
            assert time.monotonic() < deadline, f"the upstream never stalled: {upstream.written} bytes written"
            settled = stalled(written)
            written = upstream.written
        # What is in flight fits the sockets' buffers and the proxy's write watermark, a
        # few megabytes on loopback; a proxy that buffered the stream would take it all.
        assert settled < 48 << 20, f"{settled} bytes left the upstream while the client read nothing"

        # Reading again lets the stream move on: it was held back, not broken.
        client.settimeout(10)
        for _ in range(2000):
            client.recv(65536)
        deadline = time.monotonic() + 10
        while upstream.written <= settled:
            assert time.monotonic() < deadline, "the upstream did not resume once the client read again"
            client.recv(65536)
