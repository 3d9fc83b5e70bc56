"""A replay upstream: serves the recorded provider transcripts in ../shared/fixtures byte
for byte, as OpenAI, Anthropic and Gemini would, so Switchyard's translations can be
tested against real traffic.

The deployment's upstream model names the scenario. A model `<scenario>@<seed>` sends a
stream in pseudo-random chunks (fixed seed), flushing each, so chunk boundaries fall
anywhere: mid-line, mid-UTF-8 sequence, between CR and LF.
"""

from __future__ import annotations

import json
import random
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def fixture_bytes(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


def recorded_body(path: str, index: int) -> bytes:
    """The response body of exchange `index` in an anthropic-sdk-python recording."""
    body = json.loads(fixture_bytes(path))[index]["response"]["body"]
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


def recorded_headers(path: str, index: int) -> tuple:
    """The capacity headers of exchange `index` in an anthropic-sdk-python recording."""
    headers = json.loads(fixture_bytes(path))[index]["response"]["headers"]
    return tuple((k, v) for k, v in headers.items() if "ratelimit" in k or k.startswith("retry-after"))


def cassette(path: str, index: int = 0) -> dict:
    """Interaction `index` of a VCR cassette."""
    return yaml.safe_load(fixture_bytes(path))["interactions"][index]["response"]


def cassette_body(path: str, index: int = 0) -> bytes:
    """A cassette's response body: the raw string, or the recorder's parsed JSON re-encoded."""
    response = cassette(path, index)
    body = response.get("body") or {}
    if isinstance(body, dict) and "string" in body:
        return body["string"].encode()
    return json.dumps(response["parsed_body"]).encode()


def chunk_list_as_sse(path: str) -> bytes:
    """A recording stored as a JSON list of chunks, framed as the SSE an engine sends."""
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in json.loads(fixture_bytes(path))).encode() + b"data: [DONE]\n\n"


def chunks_as_sse(path: str, *, crlf: bool = False, named: bool = False, done: bool = False) -> bytes:
    """A `.chunks.txt` recording (one event JSON per line) framed as SSE again."""
    newline = "\r\n" if crlf else "\n"
    events = []
    for line in fixture_bytes(path).decode().splitlines():
        if not line.strip():
            continue
        prefix = f"event: {json.loads(line)['type']}{newline}" if named else ""
        events.append(f"{prefix}data: {line}{newline}{newline}")
    if done:
        events.append(f"data: [DONE]{newline}{newline}")
    return "".join(events).encode()


def merged_gemini_stream(path: str) -> bytes:
    """**Derived**: the non-streaming answer a recorded Gemini stream adds up to. A stream
    is one GenerateContentResponse split into events: its parts in order, the last
    finishReason, the last (cumulative) usageMetadata."""
    events = [json.loads(line) for line in fixture_bytes(path).decode().splitlines() if line.strip()]
    parts, finish = [], None
    for event in events:
        candidate = (event.get("candidates") or [{}])[0]
        parts.extend((candidate.get("content") or {}).get("parts") or [])
        finish = candidate.get("finishReason") or finish
    merged = {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": events[-1].get("usageMetadata"),
    }
    if "modelVersion" in events[-1]:
        merged["modelVersion"] = events[-1]["modelVersion"]
    return json.dumps(merged).encode()


@dataclass
class Scenario:
    """What the replay upstream answers for one upstream model name."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple = ()


ANTHROPIC_STREAMS = {
    "anthropic-text-sdk": lambda: fixture_bytes("anthropic/sse/text.anthropic-sdk-python.sse"),
    "anthropic-tool-recorded": lambda: fixture_bytes("anthropic/sse/tool-use-input_json_delta.recorded.sse"),
    "anthropic-structured": lambda: fixture_bytes("anthropic/sse/text-structured-output.recorded.sse"),
    "anthropic-tool-sdk": lambda: fixture_bytes("anthropic/sse/tool-use.anthropic-sdk-python.sse"),
    # Exchange 0 of this recording is anthropic-tool-recorded; exchange 1 answers after the tool result.
    "anthropic-two-turns-2": lambda: recorded_body("anthropic/recorded/anthropic-sdk-python.tool-use-stream-two-turns.json", 1),
    "anthropic-text-chunks": lambda: chunks_as_sse("anthropic/chunks/vercel.anthropic-text.chunks.txt", named=True),
    "anthropic-tool-no-args": lambda: chunks_as_sse("anthropic/chunks/vercel.anthropic-tool-no-args.chunks.txt", named=True),
    "anthropic-thinking": lambda: cassette_body("anthropic/cassettes/pydantic-ai.thinking-stream.yaml"),
}
ANTHROPIC_JSON = {
    "anthropic-text-json": lambda: fixture_bytes("anthropic/json/vercel.anthropic-text.json"),
    "anthropic-rl-text": lambda: recorded_body("anthropic/recorded/anthropic-sdk-python.200-with-ratelimit-headers.json", 0),
    "anthropic-rl-tool": lambda: recorded_body("anthropic/recorded/anthropic-sdk-python.200-with-ratelimit-headers.json", 1),
    "anthropic-retry-after": lambda: cassette_body("anthropic/cassettes/pydantic-ai.nonstream-200-with-retry-after.yaml"),
}
GEMINI_STREAMS = {
    "gemini-text-pydantic": lambda: fixture_bytes("gemini/sse/text.pydantic-ai.sse"),
    "gemini-function-call": lambda: fixture_bytes("gemini/sse/function-call.pydantic-ai.sse"),
    "gemini-text-newrelic": lambda: fixture_bytes("gemini/sse/text.newrelic.sse"),
    "gemini-usage-live": lambda: fixture_bytes("gemini/sse/usage-live.pydantic-ai.sse"),
    "gemini-text-firebase": lambda: fixture_bytes("gemini/sse/text.firebase.sse"),
    "gemini-tool-chunks": lambda: chunks_as_sse("gemini/chunks/vercel.google-tool-call.chunks.txt", crlf=True),
}
GEMINI_JSON = {
    "gemini-text-json": lambda: fixture_bytes("gemini/json/text.firebase.json"),
    "gemini-vercel-json": lambda: fixture_bytes("gemini/json/vercel.google-text.json"),
    # No non-streaming Gemini tool call was recorded; derived from the recorded stream.
    "gemini-tool-json": lambda: merged_gemini_stream("gemini/chunks/vercel.google-tool-call.chunks.txt"),
}
OPENAI_STREAMS = {
    f"openai-{Path(name).stem}": (lambda name=name: fixture_bytes(f"openai/sse/{name}"))
    for name in [
        "chat-text.openai-python.sse", "chat-refusal.openai-python.sse", "chat-tool-call.openai-python.sse",
        "chat-text-include_usage.newrelic.sse", "chat-tool-call-include_usage.pydantic-ai.sse",
        "chat-after-tool-result-include_usage.pydantic-ai.sse", "chat-text-no-stream_options.newrelic.sse",
    ]
}
OPENAI_STREAMS["openai-vercel-text-chunks"] = lambda: chunks_as_sse("openai/chunks/vercel.openai-text.chunks.txt", done=True)
OPENAI_JSON = {"openai-vercel-json": lambda: fixture_bytes("openai/json/vercel.openai-text.json")}
AZURE_STREAMS = {"azure-model-router": lambda: chunks_as_sse("openai/chunks/vercel.azure-model-router.chunks.txt", done=True)}
ENGINE_STREAMS = {
    f"tgi-{Path(name).stem}": (lambda name=name: chunk_list_as_sse(f"local-engines/tgi/{name}"))
    for name in [
        "chat-stream-include_usage.hf-client.json", "chat-stream-include_usage.openai-client.json",
        "chat-stream-no-usage.openai-client.json", "chat-stream-tool-call.openai-client.json",
    ]
}
ENGINE_JSON = {
    "tgi-tool-call-json": lambda: fixture_bytes("local-engines/tgi/chat-tool-call-nonstream.json"),
    "ollama-json-schema": lambda: cassette_body("local-engines/ollama/pydantic-ai.nonstream-json_schema-reasoning.yaml"),
}

ANTHROPIC_ERRORS = {
    "anthropic-401": (401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
    "anthropic-403": (403, {"type": "error", "error": {"type": "permission_error", "message": "Your API key does not have permission"}}),
    "anthropic-404": (404, {"type": "error", "error": {"type": "not_found_error", "message": "model: claude-nope"}}),
    "anthropic-429": (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}}),
    # Verbatim body of a real 529 (fixtures/anthropic/errors/observed-in-the-wild.md).
    "anthropic-529": (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_011CZqsSVKqVkLw8gAm7VTrb"}),
    "anthropic-500": (500, {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}),
    "anthropic-400": (400, json.loads(recorded_body("anthropic/recorded/anthropic-sdk-python.400-invalid_request_error.json", 1))),
}
GEMINI_ERRORS = {
    "gemini-400-key": (400, "gemini/errors/400-API_KEY_INVALID.firebase.json"),
    "gemini-404": (404, "gemini/errors/404-unknown-model.firebase.json"),
    "gemini-429": (429, "gemini/errors/vercel.429-RESOURCE_EXHAUSTED-retryinfo.json"),
    "gemini-500": (500, None),
}


def scenario(provider: str, model: str, stream: bool) -> Scenario:
    if provider == "anthropic":
        if model in ANTHROPIC_ERRORS:
            status, body = ANTHROPIC_ERRORS[model]
            return Scenario(status, json.dumps(body).encode())
        if stream and model in ANTHROPIC_STREAMS:
            return Scenario(200, ANTHROPIC_STREAMS[model](), "text/event-stream")
        if not stream and model in ANTHROPIC_JSON:
            recording = "anthropic/recorded/anthropic-sdk-python.200-with-ratelimit-headers.json"
            headers = recorded_headers(recording, 0 if model == "anthropic-rl-text" else 1) if model.startswith("anthropic-rl") else ()
            if model == "anthropic-retry-after":
                headers = (("retry-after", str(cassette("anthropic/cassettes/pydantic-ai.nonstream-200-with-retry-after.yaml")["headers"]["retry-after"][0])),)
            return Scenario(200, ANTHROPIC_JSON[model](), headers=headers)
    if provider == "gemini":
        if model in GEMINI_ERRORS:
            status, path = GEMINI_ERRORS[model]
            body = fixture_bytes(path) if path else json.dumps(
                {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}).encode()
            return Scenario(status, body)
        if stream and model in GEMINI_STREAMS:
            return Scenario(200, GEMINI_STREAMS[model](), "text/event-stream")
        if not stream and model in GEMINI_JSON:
            return Scenario(200, GEMINI_JSON[model]())
    streams = {"openai": OPENAI_STREAMS, "azure": AZURE_STREAMS, "engine": ENGINE_STREAMS}.get(provider, {})
    answers = {"openai": OPENAI_JSON, "engine": ENGINE_JSON}.get(provider, {})
    if stream and model in streams:
        return Scenario(200, streams[model](), "text/event-stream")
    if not stream and model in answers:
        return Scenario(200, answers[model]())
    return Scenario(404, json.dumps({"error": {"message": f"replay: no {provider} scenario {model!r} (stream={stream})",
                                               "type": "invalid_request_error", "code": "model_not_found"}}).encode())


class ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests_seen: list = []

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        ReplayHandler.requests_seen.append({"path": self.path, "headers": dict(self.headers), "body": request})
        gemini = re.match(r"^/v1beta/models/([^:]+):(generateContent|streamGenerateContent)", self.path)
        azure = re.match(r"^/openai/deployments/([^/]+)/chat/completions\?api-version=", self.path)
        if gemini:
            provider, model, stream = "gemini", gemini.group(1), gemini.group(2) == "streamGenerateContent"
        elif azure:
            provider, model, stream = "azure", azure.group(1), bool(request.get("stream"))
        elif self.path == "/engine/v1/chat/completions":
            provider, model, stream = "engine", request.get("model", ""), bool(request.get("stream"))
        elif self.path == "/v1/messages":
            provider, model, stream = "anthropic", request.get("model", ""), bool(request.get("stream"))
        else:
            provider, model, stream = "openai", request.get("model", ""), bool(request.get("stream"))
        name, _, seed = model.partition("@")
        answer = scenario(provider, name, stream)
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        for key, value in answer.headers:
            self.send_header(key, value)
        if answer.content_type == "text/event-stream":
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in split(answer.body, seed):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        self.wfile.flush()


def split(body: bytes, seed: str) -> list:
    """The body whole, or in pseudo-random pieces of 1 to 64 bytes for a given seed."""
    if not seed:
        return [body]
    generator = random.Random(int(seed))
    pieces, index = [], 0
    while index < len(body):
        size = generator.randint(1, 64)
        pieces.append(body[index:index + size])
        index += size
    return pieces


def start() -> tuple:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ReplayHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, server.server_address[1]


# Recordings not replayed as chat traffic, and why. Every other transcript file in the
# fixtures is served above (test_every_transcript_is_replayed checks it).
NOT_REPLAYED = {
    "openai/cassettes/newrelic.openai-chat-and-errors.yaml":
        "its chat interactions are replayed through their derived openai/sse and openai/http files; the rest are /v1/responses and embeddings",
    "openai/cassettes/pydantic-ai.chat-stream-tool-call-include_usage.yaml":
        "both interactions are replayed through their derived openai/sse files",
    "gemini/cassettes/pydantic-ai.function-call.yaml": "replayed through its derived gemini/sse file",
    "gemini/cassettes/pydantic-ai.text.yaml": "replayed through its derived gemini/sse file",
    "gemini/cassettes/pydantic-ai.usage-live.yaml": "replayed through its derived gemini/sse file",
    "gemini/cassettes/newrelic.gemini-and-vertex.yaml": "batchEmbedContents and Vertex traffic: no chat completion to translate",
    "anthropic/recorded/anthropic-sdk-python.400-invalid_request_error.json": "its 400 body is replayed as anthropic-400",
    "gemini/http/200-stream-headers.newrelic.http": "headers only",
    "gemini/http/404-stream-request-unknown-model.newrelic.http": "the same body as gemini/errors/404-unknown-model, replayed as gemini-404",
    "gemini/http/400-stream-request-bad-api-key.newrelic.http": "the same body as gemini/errors/400-API_KEY_INVALID, replayed as gemini-400-key",
    "gemini/errors/429-RESOURCE_EXHAUSTED-quota.firebase.json": "a second 429 shape; the RetryInfo one is replayed as gemini-429 (both are unit-tested)",
    "openai/http/200-chat-with-ratelimit-headers.newrelic.http": "unit-tested for its x-ratelimit headers",
    "openai/http/404-model_not_found.newrelic.http": "unit-tested (OpenAI errors pass through)",
    "openai/http/404-model_not_found-stream-request.newrelic.http": "unit-tested (OpenAI errors pass through)",
    "openai/http/401-invalid_api_key.newrelic.http": "unit-tested: its message quotes the key and must never pass",
    "openai/errors/vercel.400-unsupported_parameter.json": "unit-tested (OpenAI errors pass through)",
}
