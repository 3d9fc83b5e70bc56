"""Counts Switchyard's instructions per request under callgrind (started with
--collect-atstart=no): a warm-up, then `count` whole and `count` streamed requests
in sequence on one keep-alive connection, each set in its own dump. Prints one line per
set. Instructions, unlike seconds, come out the same on a busy machine."""

import glob
import http.client
import subprocess
import sys
import time

pid, url, key, count, whole, stream, work = sys.argv[1:]
count = int(count)
host, port = url.removeprefix("http://").split(":")
connection = http.client.HTTPConnection(host, int(port), timeout=120)
headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def send(body: str, times: int) -> None:
    for _ in range(times):
        connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        assert answer.status == 200, (answer.status, data[:300])


def control(*arguments: str) -> None:
    subprocess.run(["callgrind_control", *arguments, pid], check=True, capture_output=True)


send(whole, 100)
send(stream, 100)
control("-i", "on")
started = time.monotonic()
send(whole, count)
control("-d", "whole")
send(stream, count)
control("-d", "stream")
control("-i", "off")
elapsed = time.monotonic() - started


def totals(reason: str) -> int:
    for path in glob.glob(f"{work}/callgrind.{pid}.*"):
        text = open(path).read()
        if f"Trigger: Client Request: {reason}" in text:
            for line in text.splitlines():
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
    raise SystemExit(f"no callgrind dump for {reason}")


for reason in ("whole", "stream"):
    print(f"Switchyard instructions per {reason} request (callgrind, {count} requests): {totals(reason) // count:,}")
print(f"(under callgrind the {2 * count} requests took {elapsed:.0f} s)")
