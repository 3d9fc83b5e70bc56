#!/usr/bin/env python3
"""Load generator for bench/scheduling.sh (needs httpx: the repo's .venv has it).

Against a running `switchyard serve`, it keeps a fixed number of streaming chat
completions in flight per tenant for a while, each worker sending its next request as
soon as the previous one ends (a closed loop), and measures each request's time to first
token: from sending the request to the first SSE `data:` line. Requests that start in the
warm-up are not counted; requests that start before the end are read to their end and
counted. One JSON object per tier goes to stdout (or to --json, appended):

  {"scheduling": "contract", "tier": "enterprise", "requests": 123, "errors": 0,
   "ttft_p50_ms": ..., "ttft_p95_ms": ..., "queue_p50_ms": ..., ...}

and `--table FILE` prints the rows of a file of such objects as a table.

  scheduling_load.py --url http://127.0.0.1:PORT --scheduling contract \\
      --tenant standard=KEY:24 --tenant enterprise=KEY:2 --duration 20 --warmup 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time

import httpx

CHAT_PATH = "/v1/chat/completions"


def log(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


class Tally:
    def __init__(self) -> None:
        self.ttft_ms: list[float] = []
        self.total_ms: list[float] = []
        self.queue_ms: list[float] = []
        self.errors = 0
        self.error_sample: str | None = None


async def one_request(client: httpx.AsyncClient, key: str, body: dict) -> tuple[float, float, float | None]:
    """(time to first data line, total time, x-switchyard-queue-ms), in ms."""
    start = time.perf_counter()
    first: float | None = None
    async with client.stream(
        "POST", CHAT_PATH, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as response:
        if response.status_code != 200:
            text = (await response.aread()).decode(errors="replace")
            raise RuntimeError(f"HTTP {response.status_code}: {text[:200]}")
        queue = response.headers.get("x-switchyard-queue-ms")
        async for line in response.aiter_lines():
            if first is None and line.startswith("data:"):
                first = time.perf_counter()
        end = time.perf_counter()
    if first is None:
        raise RuntimeError("stream ended without a data line")
    return (first - start) * 1000, (end - start) * 1000, float(queue) if queue is not None else None


async def worker(client, key, body, tally: Tally, counting_from: float, until: float) -> None:
    while time.perf_counter() < until:
        started = time.perf_counter()
        try:
            ttft, total, queue = await one_request(client, key, body)
        except Exception as error:  # noqa: BLE001 - counted and reported, the load goes on
            if started >= counting_from:
                tally.errors += 1
                tally.error_sample = tally.error_sample or repr(error)
            await asyncio.sleep(0.05)
            continue
        if started >= counting_from:
            tally.ttft_ms.append(ttft)
            tally.total_ms.append(total)
            if queue is not None:
                tally.queue_ms.append(queue)


async def run(args) -> list[dict]:
    tenants = []
    for spec in args.tenant:
        tier, rest = spec.split("=", 1)
        key, count = rest.rsplit(":", 1)
        tenants.append((tier, key, int(count)))
    body = {
        "model": args.model,
        "messages": [{"role": "user", "content": "Benchmark the scheduler"}],
        "max_tokens": args.max_tokens,
        "stream": True,
    }
    in_flight = sum(count for _, _, count in tenants)
    limits = httpx.Limits(max_connections=in_flight + 8, max_keepalive_connections=in_flight + 8)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=timeout) as client:
        begin = time.perf_counter()
        counting_from = begin + args.warmup
        until = counting_from + args.duration
        tallies = {tier: Tally() for tier, _, _ in tenants}
        tasks = [
            asyncio.create_task(worker(client, key, body, tallies[tier], counting_from, until))
            for tier, key, count in tenants
            for _ in range(count)
        ]
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - counting_from
    rows = []
    for tier, _, count in tenants:
        tally = tallies[tier]
        if tally.error_sample:
            log(f"{tier}: {tally.errors} errors, e.g. {tally.error_sample}")
        rows.append({
            "scheduling": args.scheduling,
            "tier": tier,
            "in_flight": count,
            "requests": len(tally.ttft_ms),
            "errors": tally.errors,
            "requests_per_s": len(tally.ttft_ms) / elapsed,
            "ttft_p50_ms": percentile(tally.ttft_ms, 0.50),
            "ttft_p95_ms": percentile(tally.ttft_ms, 0.95),
            "ttft_max_ms": max(tally.ttft_ms, default=math.nan),
            "total_p50_ms": percentile(tally.total_ms, 0.50),
            "queue_p50_ms": percentile(tally.queue_ms, 0.50),
            "queue_p95_ms": percentile(tally.queue_ms, 0.95),
        })
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'scheduling':<12}{'tier':<12}{'in_flight':>10}{'requests':>10}{'errors':>8}{'req/s':>8}"
          f"{'ttft_p50_ms':>13}{'ttft_p95_ms':>13}{'ttft_max_ms':>13}{'queue_p50_ms':>14}{'queue_p95_ms':>14}")
    for row in rows:
        def ms(name):
            value = row[name]
            return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f}"
        print(f"{row['scheduling']:<12}{row['tier']:<12}{row['in_flight']:>10}{row['requests']:>10}{row['errors']:>8}"
              f"{row['requests_per_s']:>8.1f}{ms('ttft_p50_ms'):>13}{ms('ttft_p95_ms'):>13}{ms('ttft_max_ms'):>13}"
              f"{ms('queue_p50_ms'):>14}{ms('queue_p95_ms'):>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url")
    parser.add_argument("--scheduling", default="?", help="the label of this run")
    parser.add_argument("--tenant", action="append", default=[], help="TIER=KEY:IN_FLIGHT, repeatable")
    parser.add_argument("--model", default="chat-small")
    parser.add_argument("--max-tokens", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load before measuring")
    parser.add_argument("--json", help="append the rows to this file (one JSON object a line)")
    parser.add_argument("--table", help="print the rows of this file as a table, and do nothing else")
    args = parser.parse_args()
    if args.table:
        with open(args.table) as file:
            print_table([json.loads(line) for line in file if line.strip()])
        return
    rows = asyncio.run(run(args))
    if args.json:
        with open(args.json, "a") as file:
            for row in rows:
                file.write(json.dumps(row) + "\n")
    else:
        print_table(rows)


if __name__ == "__main__":
    main()
