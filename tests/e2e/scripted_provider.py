"""An OpenAI-compatible provider whose answer depends on the API key presented, scripted
by the test: answer, rate limit (429 with retry-after, retry-after-ms, x-should-retry, or
nothing about when to retry), reject (401), or fail with an error that quotes the key it
was sent ("leak", with any status; "leak-stream", mid-stream).
It records every request (key, arrival time, status) so tests can check which key served
what."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    """What the provider does with one key."""

    mode: str = "ok"  # "ok", "429", "401", "500", "leak" or "leak-stream"
    # A 429's `retry-after` in seconds; None sends none.
    retry_after: float | None = 1.0
    # A 429's `retry-after-ms`, when set.
    retry_after_ms: float | None = None
    # A 429's `x-should-retry` ("true" or "false"), when set.
    should_retry: bool | None = None
    # The status of a "leak" answer.
    status: int = 400
    # How many more 429s to give before answering again; None: until told otherwise.
    remaining: int | None = None


@dataclass
class Hit:
    key: str
    at: float
    status: int


@dataclass
class ScriptedProvider:
    delay: float = 0.0
    scripts: dict[str, Script] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def script(self, key: str, mode: str, retry_after: float | None = 1.0, times: int | None = None, status: int = 400,
               retry_after_ms: float | None = None, should_retry: bool | None = None) -> None:
        with self.lock:
            self.scripts[key] = Script(mode=mode, retry_after=retry_after, remaining=times, status=status,
                                       retry_after_ms=retry_after_ms, should_retry=should_retry)

    def hits_for(self, key: str) -> list[Hit]:
        with self.lock:
            return [hit for hit in self.hits if hit.key == key]

    def decide(self, key: str) -> tuple[int, Script]:
        with self.lock:
            script = self.scripts.get(key, Script())
            status = 200
            if script.mode == "429":
                status = 429
                if script.remaining is not None:
                    script.remaining -= 1
                    if script.remaining <= 0:
                        self.scripts[key] = Script()
            elif script.mode in ("401", "500"):
                status = int(script.mode)
            elif script.mode == "leak":
                status = script.status
            self.hits.append(Hit(key, time.time(), status))
            return status, script

    def start(self) -> int:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                key = (self.headers.get("authorization") or "").removeprefix("Bearer ")
                status, script = provider.decide(key)
                if provider.delay:
                    time.sleep(provider.delay)
                if status == 429:
                    headers = {"x-ratelimit-remaining-requests": "0"}
                    if script.retry_after is not None:
                        headers["retry-after"] = f"{script.retry_after:g}"
                    if script.retry_after_ms is not None:
                        headers["retry-after-ms"] = f"{script.retry_after_ms:g}"
                    if script.should_retry is not None:
                        headers["x-should-retry"] = "true" if script.should_retry else "false"
                    self.send_json(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                                   "param": None, "code": "rate_limit_exceeded"}}, headers)
                    return
                if status == 500:
                    self.send_json(500, {"error": {"message": "The server had an error while processing your request.",
                                                   "type": "server_error", "param": None, "code": None}})
                    return
                if status == 401:
                    self.send_json(401, {"error": {"message": f"Incorrect API key provided: {key[:3]}...{key[-4:]}.",
                                                   "type": "invalid_request_error", "param": None,
                                                   "code": "invalid_api_key"}})
                    return
                if script.mode == "leak":
                    # The ways providers quote credentials: whole, in part, as a header, in a URL.
                    self.send_json(status, {"error": {
                        "message": f"Invalid request made with API key {key}. Authorization: Bearer {key}; "
                                   f"key ending {key[-12:]}, partial {key[4:16]}; see https://x.test/v1?key={key}",
                        "type": "invalid_request_error", "param": f"api_key={key}", "code": None,
                    }}, {"x-echoed-key": key})
                    return
                created = int(time.time())
                usage = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for chunk in [
                        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}]},
                        {"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}]},
                        {"choices": [], "usage": usage},
                    ]:
                        chunk.update({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                                      "model": body.get("model")})
                        self.write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
                        if script.mode == "leak-stream":
                            error = {"error": {"message": f"Upstream failed for key {key} (Bearer {key})",
                                               "type": "server_error", "param": None, "code": None}}
                            self.write_chunk(f"data: {json.dumps(error)}\n\n".encode())
                            self.write_chunk(b"")
                            return
                    self.write_chunk(b"data: [DONE]\n\n")
                    self.write_chunk(b"")
                    return
                self.send_json(200, {
                    "id": "chatcmpl-scripted", "object": "chat.completion", "created": created, "model": body.get("model"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                                 "finish_reason": "stop"}],
                    "usage": usage,
                }, {"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999"})

            def write_chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def send_json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address[1]

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
