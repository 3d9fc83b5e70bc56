"""An OpenAI-compatible engine for the portal's hosted-chat tests, on asyncio in a thread
of its own. What it answers depends on the last user message:

- containing "[hold]": the first part of the answer, then nothing until the test calls
  `release()`, then the rest. The test sees the partial answer in the page while the
  rest is held back, so a streamed answer is told from a buffered one by behaviour.
- containing "[endless]": one chunk, then nothing until the proxy closes the connection,
  which is counted in `aborted` (the page's stop button must reach the upstream).
- anything else: the whole answer at once.

Every answer holds markdown and HTML that must be shown as text (`ANSWER`). Streams end
with a usage chunk and `[DONE]`; whole answers carry `usage`. Keep-alive is honoured."""

from __future__ import annotations

import asyncio
import json
import threading

from asyncio_upstream import AsyncioUpstream

FIRST_PART = "Here is **bold** text and `code`. "
INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
ANSWER = FIRST_PART + INJECTION + " The end."
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


class ChatUpstream(AsyncioUpstream):
    def __init__(self) -> None:
        self.aborted = 0
        self.requests = 0
        self._release: asyncio.Event | None = None
        self._aborted_event = threading.Event()
        super().__init__()

    def _prepare(self) -> None:
        self._release = asyncio.Event()

    def release(self) -> None:
        """Lets every held answer go on to its end."""
        self._loop.call_soon_threadsafe(self._release.set)

    def wait_for_abort(self, timeout: float) -> bool:
        return self._aborted_event.wait(timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                body = json.loads(await self._read_body(reader) or b"{}")
                self.requests += 1
                prompt = next((m.get("content", "") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
                if not body.get("stream"):
                    self._whole(writer, body)
                    await writer.drain()
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                if "[endless]" in prompt:
                    self._delta(writer, FIRST_PART)
                    await writer.drain()
                    # Nothing more: the proxy closes the connection when the client stops.
                    await reader.read()
                    self.aborted += 1
                    self._aborted_event.set()
                    return
                if "[hold]" in prompt:
                    self._delta(writer, FIRST_PART)
                    await writer.drain()
                    await self._release.wait()
                    rest = ANSWER[len(FIRST_PART):]
                else:
                    rest = ANSWER
                for start in range(0, len(rest), 16):
                    self._delta(writer, rest[start:start + 16])
                self._chunk(writer, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                self._chunk(writer, {"choices": [], "usage": USAGE})
                self._event(writer, b"data: [DONE]\n\n")
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _whole(self, writer: asyncio.StreamWriter, body: dict) -> None:
        answer = json.dumps({
            "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": body.get("model", "m"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
            "usage": USAGE,
        }).encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))

    def _delta(self, writer: asyncio.StreamWriter, text: str) -> None:
        self._chunk(writer, {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})
