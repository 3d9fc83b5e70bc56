#!/usr/bin/env python3
"""Lists the largest async frames in a Swift binary (a memory diagnostic, standard library only).

Every async function has an "async function pointer" (mangled name ending in `Tu`): a
32-bit relative offset to the code, then the 32-bit size of its async context, which the
task allocator hands out on each call. A task keeps the slabs its deepest call chain
needed until the task ends (Swift's StackAllocator never frees them earlier), so large
frames on the request path are paid for by every open connection.

    bench/async_frames.py .build-release/release/switchyard            # top 40
    bench/async_frames.py BINARY --top 80 --match Proxy.               # only names containing it

Needs `nm` and `readelf` (binutils) and `swift demangle` (on PATH or /opt/swift/usr/bin).
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess


def sections(binary: str) -> list[tuple[int, int, int, str]]:
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.replace("[ ", "[").split()
        if len(parts) > 6 and parts[0].startswith("["):
            try:
                address, offset, size = int(parts[3], 16), int(parts[4], 16), int(parts[5], 16)
            except ValueError:
                continue
            if parts[1] != ".bss":
                result.append((address, offset, size, parts[1]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames whose demangled name contains this")
    args = parser.parse_args()

    symbols = subprocess.run(["nm", args.binary], capture_output=True, text=True, check=True).stdout
    table = sections(args.binary)
    with open(args.binary, "rb") as file:
        data = file.read()
    rows = []
    for line in symbols.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].endswith("Tu"):
            continue
        address = int(parts[0], 16)
        for start, offset, size, _ in table:
            if start <= address < start + size:
                _, context_size = struct.unpack_from("<iI", data, offset + address - start)
                rows.append((context_size, parts[2]))
                break
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    names = subprocess.run(
        [swift, "demangle", "--simplified", "--compact"],
        input="\n".join(symbol for _, symbol in rows),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    listed = sorted(
        ((size, name.removeprefix("async function pointer to ")) for (size, _), name in zip(rows, names)),
        reverse=True,
    )
    listed = [row for row in listed if args.match in row[1]]
    print(f"{'bytes':>7}  async function ({os.path.basename(args.binary)}: {len(rows)} async functions)")
    for size, name in listed[: args.top]:
        print(f"{size:>7}  {name[:200]}")


if __name__ == "__main__":
    main()
