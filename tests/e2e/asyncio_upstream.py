"""The base of the test upstreams that run an asyncio server in a thread of their own:
the loop, the port, `url`, `stop()`. A subclass writes `_serve(reader, writer)` and may
make its asyncio objects in `_prepare()`, on the loop's thread."""

from __future__ import annotations

import asyncio
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

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._prepare()
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=self._backlog))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
