#!/usr/bin/env python3
"""Load generator and RSS sampler for bench/memory.sh (standard library only).

Against a running `switchyard serve` (its pid given), it runs phases one after another:

  rest          the settled RSS with nothing open (after a short warm-up)
  idle:N        N keep-alive connections, each answered one GET /health, then left idle
  stream:N      N streaming chat completions open at once, read slowly by this client

Each phase opens its connections, waits until every one is in the wanted state (a /health
answer, or the first SSE chunk of the stream), lets the server settle, samples VmRSS from
/proc/PID/status, closes everything, and waits until the proxy's file descriptors are back
and its RSS has settled again. Rows go to stdout as a table and, with --json, to a file
(one JSON object a line) so that runs against fresh servers can be printed together with
--table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time

CHAT_PATH = "/v1/chat/completions"


def log(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# MARK: - the server process


class Process:
    def __init__(self, pid: int):
        self.pid = pid

    def status(self) -> dict[str, int]:
        values = {}
        with open(f"/proc/{self.pid}/status") as file:
            for line in file:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM", "Threads"):
                    values[key] = int(rest.split()[0])
        return values  # kB, except Threads

    def rss_kb(self) -> int:
        return self.status()["VmRSS"]

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def sockets(self) -> int:
        count = 0
        for name in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.pid}/fd/{name}").startswith("socket:"):
                    count += 1
            except OSError:
                pass
        return count


async def settled_sample(process: Process, settle: float, samples: int = 5, interval: float = 1.0) -> dict:
    """Waits `settle` seconds, then until RSS stops moving (5 samples within 1%, at most
    60 s more), and returns the median of the last samples with the other counters."""
    await asyncio.sleep(settle)
    history: list[int] = []
    deadline = time.monotonic() + 60
    while True:
        history.append(process.rss_kb())
        recent = history[-samples:]
        if len(recent) == samples and (max(recent) - min(recent)) <= max(0.01 * max(recent), 256):
            break
        if time.monotonic() > deadline and len(recent) == samples:
            log(f"RSS still moving after 60 s: {recent} kB; taking the median")
            break
        await asyncio.sleep(interval)
    status = process.status()
    return {
        "rss_kb": int(statistics.median(history[-samples:])),
        "anon_kb": status["RssAnon"],
        "file_kb": status["RssFile"],
        "hwm_kb": status["VmHWM"],
        "threads": status["Threads"],
        "sockets": process.sockets(),
    }


def trim_server(process: Process) -> dict | None:
    """Asks the server for glibc's account of its heap and to call malloc_trim(0) (a
    diagnostic only): memory.sh's TRIM=1 preloads a small library into serve whose thread,
    when the file /tmp/switchyard-trim.PID appears, writes mallinfo2() into it, trims,
    and renames it to ….done."""
    path = f"/tmp/switchyard-trim.{process.pid}"
    with open(path, "w"):
        pass
    deadline = time.monotonic() + 30
    while not os.path.exists(path + ".done") and time.monotonic() < deadline:
        time.sleep(0.1)
    if not os.path.exists(path + ".done"):
        os.unlink(path)
        log("the server did not trim (was it started with TRIM=1?)")
        return None
    with open(path + ".done") as file:
        in_use, free, mmapped, arena = (int(value) for value in file.read().split())
    os.unlink(path + ".done")
    return {"malloc_in_use_kb": (in_use + mmapped) // 1024, "malloc_free_kb": free // 1024}


# MARK: - clients


class Connection:
    """One client connection: raw asyncio streams, HTTP/1.1 by hand."""

    def __init__(self):
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.ready = False  # /health answered, or first SSE chunk received
        self.error: str | None = None
        self.status: int | None = None
        self.chunks = 0
        self.bytes = 0
        self.ended = False  # the server closed or finished the response

    def close(self) -> None:
        if self.writer is not None:
            transport = self.writer.transport
            # An abortive close is what a client that goes away looks like, and frees the
            # client's port at once; the proxy sees the stream end and cancels upstream.
            transport.abort()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return status, headers


async def open_idle(connection: Connection, host: str, port: int, gate: asyncio.Semaphore) -> None:
    try:
        async with gate:
            connection.reader, connection.writer = await asyncio.open_connection(host, port)
            connection.writer.write(f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            status, headers = await read_head(connection.reader)
            connection.status = status
            await connection.reader.readexactly(int(headers.get("content-length", "0")))
        connection.ready = status == 200
        if not connection.ready:
            connection.error = f"HTTP {status}"
        # Stay idle; notice if the server closes the connection.
        data = await connection.reader.read(1)
        connection.ended = True
        if data == b"":
            connection.error = connection.error or "closed by server while idle"
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001 — every failure is counted, not raised
        connection.error = connection.error or f"{type(error).__name__}: {error}"


async def open_stream(
    connection: Connection, host: str, port: int, key: str, body: bytes, read_interval: float, gate: asyncio.Semaphore
) -> None:
    try:
        async with gate:
            connection.reader, connection.writer = await asyncio.open_connection(host, port)
            request = (
                f"POST {CHAT_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            connection.writer.write(request)
            status, headers = await read_head(connection.reader)
        connection.status = status
        if status != 200:
            connection.error = f"HTTP {status}"
            return
        buffered = b""
        while True:
            data = await connection.reader.read(16384)
            if not data:
                connection.ended = True
                if not connection.ready:
                    connection.error = "stream ended before its first chunk"
                return
            connection.bytes += len(data)
            if not connection.ready:
                buffered += data
                if b"data:" in buffered:
                    connection.ready = True
                    buffered = b""
            connection.chunks += data.count(b"data:")
            if b"data: [DONE]" in data:
                connection.ended = True
                return
            # A slow reader: take what has arrived, then look away for a while.
            await asyncio.sleep(read_interval)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # noqa: BLE001
        connection.error = f"{type(error).__name__}: {error}"


# MARK: - phases


async def wait_until(predicate, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


async def wait_for_quiet(process: Process, sockets_at_rest: int, timeout: float = 120) -> None:
    """After closing: waits until the proxy holds no more sockets than at rest (+8)."""
    if not await wait_until(lambda: process.sockets() <= sockets_at_rest + 8, timeout, 1.0):
        log(f"the proxy still holds {process.sockets()} sockets ({sockets_at_rest} at rest) after {timeout:.0f} s")


def summarise_errors(connections: list[Connection]) -> str:
    counts: dict[str, int] = {}
    for connection in connections:
        if connection.error:
            counts[connection.error] = counts.get(connection.error, 0) + 1
    return "; ".join(f"{count}× {error}" for error, count in sorted(counts.items(), key=lambda item: -item[1])[:4])


async def warm_up(args, process: Process) -> None:
    """A few requests of each kind so lazily built state (route tables, the HTTP client,
    the ledger writer) is in the baseline, not charged to the first phase."""
    gate = asyncio.Semaphore(64)
    body = json.dumps({**request_body(args), "max_tokens": 2}).encode()
    for _ in range(2):
        idle = [Connection() for _ in range(16)]
        streams = [Connection() for _ in range(16)]
        tasks = [asyncio.create_task(open_idle(c, args.host, args.port, gate)) for c in idle]
        tasks += [asyncio.create_task(open_stream(c, args.host, args.port, args.key, body, 0.0, gate)) for c in streams]
        await wait_until(lambda: all(c.ended or c.error for c in streams) and all(c.ready or c.error for c in idle), 60)
        for c in idle + streams:
            c.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        bad = [c for c in streams if c.error] + [c for c in idle if c.error and not c.ready]
        if bad:
            raise SystemExit(f"warm-up failed: {summarise_errors(bad)}")


def request_body(args) -> dict:
    return {
        "model": args.model,
        "messages": [{"role": "user", "content": "Keep this stream open for the memory benchmark"}],
        "max_tokens": args.max_tokens,
        "stream": True,
    }


async def run_phase(
    args, process: Process, kind: str, count: int, rest: dict, previous: dict, sockets_at_rest: int
) -> tuple[dict, dict]:
    gate = asyncio.Semaphore(args.connect_concurrency)
    connections = [Connection() for _ in range(count)]
    body = json.dumps(request_body(args)).encode()
    started = time.monotonic()
    if kind == "idle":
        tasks = [asyncio.create_task(open_idle(c, args.host, args.port, gate)) for c in connections]
    else:
        tasks = [
            asyncio.create_task(open_stream(c, args.host, args.port, args.key, body, args.read_interval, gate))
            for c in connections
        ]
    done = await wait_until(lambda: all(c.ready or c.error for c in connections), args.ready_timeout)
    ready = sum(c.ready for c in connections)
    ready_seconds = time.monotonic() - started
    log(
        f"{kind} {count}: {ready}/{count} {'answered' if kind == 'idle' else 'streaming'} after {ready_seconds:.1f} s"
        + ("" if done else " (timed out waiting for the rest)")
        + (f"; errors: {summarise_errors(connections)}" if any(c.error for c in connections) else "")
    )
    sample = await settled_sample(process, args.settle)
    if args.trim:
        # Diagnostic: how much of that RSS is memory malloc holds free (freed during the
        # ramp-up but not given back)? malloc_trim(0) in the server returns free pages.
        heap = trim_server(process)
        if heap:
            sample.update(heap)
            trimmed = await settled_sample(process, 2.0)
            sample["trimmed_rss_kb"] = trimmed["rss_kb"]
    # Still open? A server-side idle timeout or a stream that ended would skew the figure.
    still_open = sum(1 for c in connections if c.ready and not c.ended and not c.error)
    chunks = sum(c.chunks for c in connections)
    for connection in connections:
        connection.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await wait_for_quiet(process, sockets_at_rest)
    after = await settled_sample(process, args.settle)
    row = {
        "phase": kind,
        "n": count,
        "ready": ready,
        "open_at_sample": still_open,
        "ready_seconds": round(ready_seconds, 1),
        "chunks_received": chunks,
        **sample,
        "rest_rss_kb": rest["rss_kb"],
        "previous_rss_kb": previous["rss_kb"],
        "after_close_rss_kb": after["rss_kb"],
        "after_close_anon_kb": after["anon_kb"],
        "label": args.label,
    }
    return row, after


def kb_per(row: dict, base_key: str) -> float:
    return (row["rss_kb"] - row[base_key]) / max(row["ready"], 1)


def print_table(rows: list[dict], out=sys.stdout) -> None:
    labels = sorted({row.get("label", "") for row in rows})
    for label in labels:
        selected = [row for row in rows if row.get("label", "") == label]
        if label:
            print(f"\n{label}", file=out)
        print(
            f"{'phase':<8}{'N':>6}{'ready':>7}{'open':>6}{'RSS MB':>9}{'anon MB':>9}{'KB/conn vs rest':>17}"
            f"{'KB/conn vs prev':>17}{'anon KB/conn':>14}{'proxy sockets':>15}{'threads':>9}{'RSS after close MB':>20}",
            file=out,
        )
        trimmed = any("trimmed_rss_kb" in row for row in selected)
        if trimmed:
            print(
                "(with --trim: the last two columns are KB per connection above rest after malloc_trim(0) in the server, "
                "and malloc's bytes in use per connection above rest)",
                file=out,
            )
        rest_anon = 0
        rest_rss = 0
        for row in selected:
            if row["phase"] == "rest":
                rest_anon = row["anon_kb"]
                rest_rss = row["rss_kb"]
                rest_heap = row.get("malloc_in_use_kb", 0)
                print(
                    f"{'rest':<8}{'-':>6}{'-':>7}{'-':>6}{row['rss_kb'] / 1024:>9.1f}{row['anon_kb'] / 1024:>9.1f}{'-':>17}{'-':>17}{'-':>14}"
                    f"{row['sockets']:>15}{row['threads']:>9}{'-':>20}",
                    file=out,
                )
                continue
            ready = f"{row['ready']}" if row["ready"] == row["n"] else f"{row['ready']}!"
            print(
                f"{row['phase']:<8}{row['n']:>6}{ready:>7}{row['open_at_sample']:>6}{row['rss_kb'] / 1024:>9.1f}{row['anon_kb'] / 1024:>9.1f}"
                f"{kb_per(row, 'rest_rss_kb'):>17.1f}{kb_per(row, 'previous_rss_kb'):>17.1f}"
                f"{(row['anon_kb'] - rest_anon) / max(row['ready'], 1):>14.1f}"
                f"{row['sockets']:>15}{row['threads']:>9}{row['after_close_rss_kb'] / 1024:>20.1f}"
                + (
                    f"{(row['trimmed_rss_kb'] - rest_rss) / max(row['ready'], 1):>12.1f}"
                    f"{(row['malloc_in_use_kb'] - rest_heap) / max(row['ready'], 1):>12.1f}"
                    if "trimmed_rss_kb" in row
                    else ""
                ),
                file=out,
            )
    print(
        "\nKB/conn vs rest: (RSS - RSS at rest) / ready; vs prev: (RSS - the settled RSS before this phase, "
        "after the previous phase closed) / ready; anon KB/conn: the same as rest for RssAnon (heap and stacks, "
        "without the binary's file pages). A '!' marks a phase where not every connection got its "
        "answer or first chunk; open: connections still open (not closed by the server, stream not ended) "
        "when RSS was sampled.",
        file=out,
    )


async def main_async(args) -> list[dict]:
    process = Process(args.pid)
    rows: list[dict] = []
    if not args.no_warm_up:
        await warm_up(args, process)
    rest = await settled_sample(process, args.settle)
    if args.trim:
        rest.update(trim_server(process) or {})
        rest = {**(await settled_sample(process, 2.0)), **{k: v for k, v in rest.items() if k.startswith("malloc")}}
    sockets_at_rest = rest["sockets"]
    rows.append({"phase": "rest", "n": 0, "ready": 0, **rest, "label": args.label})
    log(f"rest: RSS {rest['rss_kb'] / 1024:.1f} MB, {rest['sockets']} sockets, {rest['threads']} threads")
    previous = rest
    for phase in args.phases:
        kind, _, count = phase.partition(":")
        if kind not in ("idle", "stream") or not count.isdigit():
            raise SystemExit(f"bad phase {phase!r}: use idle:N or stream:N")
        row, previous = await run_phase(args, process, kind, int(count), rest, previous, sockets_at_rest)
        log(
            f"{kind} {count}: RSS {row['rss_kb'] / 1024:.1f} MB ({kb_per(row, 'rest_rss_kb'):.1f} KB each above rest), "
            f"{row['sockets']} proxy sockets, {row['open_at_sample']} still open at the sample; "
            f"after closing {row['after_close_rss_kb'] / 1024:.1f} MB"
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--pid", type=int, help="the switchyard serve process")
    parser.add_argument("--key", help="a tenant key")
    parser.add_argument("--model", default="chat-small")
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--read-interval", type=float, default=1.0, help="seconds a stream's reader waits between reads")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait before sampling RSS")
    parser.add_argument("--ready-timeout", type=float, default=180.0)
    parser.add_argument("--connect-concurrency", type=int, default=128)
    parser.add_argument("--label", default="")
    parser.add_argument("--json", help="append rows to this file, one JSON object a line")
    parser.add_argument("--no-warm-up", action="store_true")
    parser.add_argument("--trim", action="store_true", help="also sample RSS after malloc_trim(0) in the server (see memory.sh TRIM=1)")
    parser.add_argument("--table", help="only print the table of the rows in this JSON-lines file")
    parser.add_argument("phases", nargs="*", help="idle:N or stream:N, run in order")
    args = parser.parse_args()

    if args.table:
        with open(args.table) as file:
            print_table([json.loads(line) for line in file if line.strip()])
        return
    if args.port is None or args.pid is None or args.key is None:
        parser.error("--port, --pid and --key are needed")
    limit = raise_nofile()
    needed = max((int(p.partition(":")[2] or 0) for p in args.phases), default=0) + 64
    if limit < needed:
        raise SystemExit(f"RLIMIT_NOFILE is {limit}; {needed} descriptors are needed")
    rows = asyncio.run(main_async(args))
    if args.json:
        with open(args.json, "a") as file:
            for row in rows:
                file.write(json.dumps(row) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()
