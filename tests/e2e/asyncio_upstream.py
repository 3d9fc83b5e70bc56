"""The base of the test upstreams that run an asyncio server in a thread of their own:
the loop, the port, `url`, `stop()`, reading a request and writing chunked SSE chunks. A
subclass writes `_serve(reader, writer)` and may make its asyncio objects in
`_prepare()`, on the loop's thread."""

from __future__ import annotations

import asyncio
import json
import threading


class AsyncioUpstream:
    def __init__(self, backlog: int = 100) -> None:
        self.port = 0
        self._backlog = backlog
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    def _prepare(self) -> None:
        """Makes what must belong to the loop (events), before the server starts."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader) -> bytes:
        """The body of the next request on the connection (its head is read and dropped)."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        return await reader.readexactly(length)

    def _chunk(self, writer: asyncio.StreamWriter, fields: dict) -> None:
        """One `chat.completion.chunk` event with `fields`."""
        chunk = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1, "model": "upstream-model"}
        chunk.update(fields)
        self._event(writer, b"data: " + json.dumps(chunk).encode() + b"\n\n")

    def _event(self, writer: asyncio.StreamWriter, event: bytes) -> None:
        """One SSE event as one HTTP chunk."""
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._prepare()
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=self._backlog))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
