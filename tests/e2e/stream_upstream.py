"""An OpenAI-compatible engine for data-plane tests, on asyncio in a thread of its own:

- "barrier": every request waits until `expected` requests are open at once, then each
  gets a short stream (three content chunks, a usage chunk, `[DONE]`). No stream can end
  before all of them are in flight, so the proxy is shown to carry that many at once.
- "flood": a stream that never ends, written as fast as the connection takes it, with the
  bytes written counted; the test reads `written` to see whether the writes stall.

HTTP/1.1 keep-alive is honoured: the proxy pools its connections to this engine."""

from __future__ import annotations

import asyncio

from asyncio_upstream import AsyncioUpstream


class StreamUpstream(AsyncioUpstream):
    def __init__(self, mode: str, expected: int = 0):
        self.mode = mode
        self.expected = expected
        self.open_requests = 0
        self.most_open = 0
        self.served = 0
        self.written = 0
        self._released: asyncio.Event | None = None
        super().__init__(backlog=4096)

    def _prepare(self) -> None:
        self._released = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._read_body(reader)
                if self.mode == "flood":
                    await self._flood(writer)
                    return
                await self._barrier_stream(writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _barrier_stream(self, writer: asyncio.StreamWriter) -> None:
        self.open_requests += 1
        self.most_open = max(self.most_open, self.open_requests)
        if self.open_requests >= self.expected:
            self._released.set()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        await writer.drain()
        await self._released.wait()
        for word in ["one", "two", "three"]:
            self._chunk(writer, {"choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]})
        self._chunk(writer, {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})
        self._event(writer, b"data: [DONE]\n\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        self.open_requests -= 1
        self.served += 1

    async def _flood(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        filler = "x" * 1000
        while True:
            self._chunk(writer, {"choices": [{"index": 0, "delta": {"content": filler}, "finish_reason": None}]})
            await writer.drain()

    def _event(self, writer: asyncio.StreamWriter, event: bytes) -> None:
        super()._event(writer, event)
        self.written += len(event)
