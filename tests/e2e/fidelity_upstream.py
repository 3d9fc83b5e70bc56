"""The upstream of the fidelity tests: serves Switchyard's own built fixtures
(../../Tests/Fixtures), the recorded Anthropic thinking stream, and answers and errors
that name the upstream model they were asked for, as OpenAI, Azure, Anthropic, Gemini
and an engine would. It keeps every request it was sent, so a test can check what
Switchyard asked the provider for.

As in replay_upstream, the upstream model names the scenario, and a model
`<scenario>@<seed>` sends a stream in seeded pieces (`replay_upstream.split`), each
flushed on its own, so chunk boundaries fall anywhere.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import replay_upstream as replay
from replay_upstream import Scenario

OWN_FIXTURES = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures"
THINKING_CASSETTE = "anthropic/cassettes/pydantic-ai.thinking-stream.yaml"


def own(path: str) -> bytes:
    return (OWN_FIXTURES / path).read_bytes()


# MARK: Built fixtures and the thinking recording, by scenario

STREAMS = {
    "gemini": {
        "gemini-cancelled": lambda: own("gemini/stream-cancelled.built.sse"),
        "gemini-partial-args": lambda: own("gemini/stream-function-call-partial-args.built.sse"),
        "gemini-partial-args-array": lambda: own("gemini/stream-function-call-partial-args-array.built.sse"),
        "gemini-blocked-no-usage": lambda: own("gemini/stream-blocked-no-usage.built.sse"),
        "gemini-thoughts": lambda: own("gemini/stream-thoughts.built.sse"),
    },
    "openai": {
        "openai-bare-error": lambda: own("openai/chat-stream-bare-error.built.sse"),
        "openai-no-usage": lambda: own("openai/chat-stream-no-usage.built.sse"),
    },
    "anthropic": {
        "anthropic-thinking": lambda: replay.cassette_body(THINKING_CASSETTE),
    },
}


# MARK: Answers that name the upstream model

# Recorded answers whose model fields are rewritten to the model the request asked for,
# as a provider names the model (or the dated snapshot of it) that answered.
NAMING_STREAMS = {
    "openai": lambda: replay.fixture_bytes("openai/sse/chat-text.openai-python.sse"),
    "azure": lambda: replay.chunks_as_sse("openai/chunks/vercel.azure-model-router.chunks.txt", done=True),
    "anthropic": lambda: replay.fixture_bytes("anthropic/sse/text.anthropic-sdk-python.sse"),
    "gemini": lambda: replay.fixture_bytes("gemini/sse/text.pydantic-ai.sse"),
    "engine": lambda: replay.chunk_list_as_sse("local-engines/tgi/chat-stream-include_usage.openai-client.json"),
}
NAMING_ANSWERS = {
    "openai": lambda: replay.fixture_bytes("openai/json/vercel.openai-text.json"),
    "azure": lambda: replay.fixture_bytes("openai/json/vercel.openai-text.json"),
    "anthropic": lambda: replay.fixture_bytes("anthropic/json/vercel.anthropic-text.json"),
    "gemini": lambda: replay.fixture_bytes("gemini/json/text.firebase.json"),
    "engine": lambda: replay.fixture_bytes("local-engines/tgi/chat-tool-call-nonstream.json"),
}
MODEL_FIELD = re.compile(rb'("(?:model|modelVersion)"\s*:\s*)"[^"]+"')


def naming(body: bytes, model: str) -> bytes:
    """`body` with every non-empty model field naming `model`, JSON-escaped as the
    provider would write it."""
    name = json.dumps(model).encode()
    return MODEL_FIELD.sub(lambda match: match.group(1) + name, body)


def naming_error(provider: str, model: str) -> Scenario:
    """A 400 (Gemini: 404) in the provider's own shape whose message names the upstream
    model, the provider and a link into its documentation."""
    if provider == "anthropic":
        body = {"type": "error", "error": {
            "type": "invalid_request_error",
            "message": f"model: {model} does not support extended thinking with this budget. "
                       "See https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking for the Anthropic models that do.",
        }, "request_id": "req_011CZqsSVKqVkLw8gAm7VTrc"}
        return Scenario(400, json.dumps(body).encode())
    if provider == "gemini":
        body = json.loads(replay.fixture_bytes("gemini/errors/404-unknown-model.firebase.json"))
        text = json.dumps(body).replace("gemini-5.0-flash", model)
        return Scenario(404, text.encode())
    body = {"error": {
        "message": f"The model `{model}` does not support 'temperature' with this value. "
                   "See https://platform.openai.com/docs/guides/reasoning for OpenAI's reasoning models.",
        "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value",
    }}
    return Scenario(400, json.dumps(body).encode())


def answer(provider: str, model: str, stream: bool) -> Scenario:
    """What the upstream sends for `model` (the scenario, seed stripped)."""
    if model.startswith("naming-error-"):
        return naming_error(provider, model)
    if model.startswith("naming-"):
        table = NAMING_STREAMS if stream else NAMING_ANSWERS
        headers = (("x-ms-deployment-name", model),) if provider == "azure" else ()
        return Scenario(200, naming(table[provider](), model), "text/event-stream" if stream else "application/json",
                        headers)
    scenarios = STREAMS.get(provider, {})
    if stream and model in scenarios:
        return Scenario(200, scenarios[model](), "text/event-stream")
    return Scenario(404, json.dumps({"error": {"message": f"fidelity: no {provider} scenario {model!r} (stream={stream})",
                                               "type": "invalid_request_error", "code": "model_not_found"}}).encode())


# MARK: Serving


class FidelityHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "FidelityUpstream"

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Each piece leaves as its own segment, not coalesced with the next.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        path = unquote(self.path)
        gemini = re.match(r"^/v1beta/models/([^:]+):(generateContent|streamGenerateContent)", path)
        azure = re.match(r"^/openai/deployments/([^/]+)/chat/completions\?api-version=", path)
        if gemini:
            provider, model, stream = "gemini", gemini.group(1), gemini.group(2) == "streamGenerateContent"
        elif azure:
            provider, model, stream = "azure", azure.group(1), bool(request.get("stream"))
        elif path == "/engine/v1/chat/completions":
            provider, model, stream = "engine", request.get("model", ""), bool(request.get("stream"))
        elif path == "/v1/messages":
            provider, model, stream = "anthropic", request.get("model", ""), bool(request.get("stream"))
        else:
            provider, model, stream = "openai", request.get("model", ""), bool(request.get("stream"))
        self.server.record({"provider": provider, "model": model, "path": path, "body": request})
        name, _, seed = model.partition("@")
        reply = answer(provider, name, stream)
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for key, value in reply.headers:
            self.send_header(key, value)
        if reply.content_type == "text/event-stream":
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            pieces = replay.split(reply.body, seed)
            for piece in pieces:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                if len(pieces) > 1:
                    time.sleep(0.0005)
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        self.wfile.flush()


class FidelityUpstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FidelityHandler)
        self._lock = threading.Lock()
        self._requests: list = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def record(self, request: dict) -> None:
        with self._lock:
            self._requests.append(request)

    def requests_for(self, model: str) -> list:
        """The request bodies sent for upstream model `model`, oldest first."""
        with self._lock:
            return [request["body"] for request in self._requests if request["model"] == model]


def start() -> FidelityUpstream:
    server = FidelityUpstream()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
