#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the recorded
provider traffic in ../shared/fixtures and from inputs of the unit tests.

Run from anywhere: python3 fuzz/corpus/make_seeds.py [path/to/shared/fixtures]
The seeds are committed; run this again only to change them. Each seed is cut to at most
MAX_BYTES (at an event or line boundary), so the corpora stay small and fast.

Seed layouts follow the targets' input formats:
  FuzzRequestHead      [model choice] body
  FuzzJSONScanner      JSON text
  FuzzSSEParser        [n] [n % 8 chunk sizes] stream
  FuzzOpenAIStream     [flags] [n] [sizes] stream     flags: bit 0 usage, bits 1-2 kind
  FuzzAnthropicStream  [flags] [n] [sizes] stream     flags: bit 0 usage
  FuzzGeminiStream     [flags] [n] [sizes] stream     flags: bit 0 usage
  FuzzResponses        HTTP text: status line, headers, blank line, body
"""

import hashlib
import json
import pathlib
import shutil
import sys

import yaml

MAX_BYTES = 4000
HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else HERE.parent.parent.parent / "shared" / "fixtures")


def read(path):
    return (FIXTURES / path).read_bytes()


def cut(data, separator):
    """At most MAX_BYTES, ending at a separator when there is one in reach."""
    if len(data) <= MAX_BYTES:
        return data
    end = data.rfind(separator, 0, MAX_BYTES)
    return data[: end + len(separator)] if end > 0 else data[:MAX_BYTES]


def cassette(path):
    return yaml.safe_load(read(path))["interactions"]


def response_text(interaction):
    body = interaction["response"].get("body")
    if isinstance(body, dict):
        body = body.get("string")
    if body is None and "parsed_body" in interaction["response"]:
        body = json.dumps(interaction["response"]["parsed_body"])
    return body.encode() if isinstance(body, str) else body


def request_text(interaction):
    request = interaction["request"]
    if isinstance(request.get("body"), str):
        return request["body"].encode()
    if "parsed_body" in request:
        return json.dumps(request["parsed_body"]).encode()
    return None


def sse_from_lines(path, event_names=False, line_end=b"\n", done=False):
    """A `*.chunks.txt` recording (one event JSON a line) framed as SSE again."""
    events = []
    for line in read(path).splitlines():
        if not line.strip():
            continue
        frame = b""
        if event_names:
            frame += b"event: " + json.loads(line)["type"].encode() + line_end
        events.append(frame + b"data: " + line + line_end + line_end)
    if done:
        events.append(b"data: [DONE]" + line_end + line_end)
    return b"".join(events)


def sse_from_chunk_array(path, done):
    """A local-engine recording (a JSON array of chunk objects) framed as SSE."""
    chunks = json.loads(read(path))
    text = b"".join(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n" for chunk in chunks)
    return text + (b"data: [DONE]\n\n" if done else b"")


def http_text(status, headers, body):
    head = f"HTTP/1.1 {status}\n" + "".join(f"{name}: {value}\n" for name, value in headers)
    return head.encode() + b"\n" + body


class Corpus:
    def __init__(self, target):
        self.folder = HERE / target
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)

    def add(self, name, data):
        digest = hashlib.sha1(data).hexdigest()[:8]
        (self.folder / f"{name}-{digest}").write_bytes(data)


def plan(*sizes):
    return bytes([len(sizes)] + list(sizes))


OPENAI_SSE = [
    "openai/sse/chat-text-include_usage.newrelic.sse",
    "openai/sse/chat-text-no-stream_options.newrelic.sse",
    "openai/sse/chat-tool-call-include_usage.pydantic-ai.sse",
    "openai/sse/chat-refusal.openai-python.sse",
    "openai/sse/chat-tool-call.openai-python.sse",
]
ANTHROPIC_SSE = [
    "anthropic/sse/text.anthropic-sdk-python.sse",
    "anthropic/sse/tool-use.anthropic-sdk-python.sse",
    "anthropic/sse/tool-use-input_json_delta.recorded.sse",
    "anthropic/sse/text-structured-output.recorded.sse",
]
GEMINI_SSE = [
    "gemini/sse/text.pydantic-ai.sse",
    "gemini/sse/function-call.pydantic-ai.sse",
    "gemini/sse/usage-live.pydantic-ai.sse",
    "gemini/sse/text.firebase.sse",
]


def stream_seeds():
    openai = [(p.split("/")[-1], cut(read(p), b"\n\n")) for p in OPENAI_SSE]
    openai.append(("azure-model-router", cut(sse_from_lines("openai/chunks/vercel.azure-model-router.chunks.txt", done=True), b"\n\n")))
    engines = [
        ("tgi-tool-call", cut(sse_from_chunk_array("local-engines/tgi/chat-stream-tool-call.openai-client.json", done=True), b"\n\n")),
        ("tgi-include-usage", cut(sse_from_chunk_array("local-engines/tgi/chat-stream-include_usage.openai-client.json", done=True), b"\n\n")),
        ("tgi-no-usage-no-done", cut(sse_from_chunk_array("local-engines/tgi/chat-stream-no-usage.openai-client.json", done=False), b"\n\n")),
    ]
    anthropic = [(p.split("/")[-1], cut(read(p), b"\n\n")) for p in ANTHROPIC_SSE]
    anthropic.append(("thinking-stream", cut(response_text(cassette("anthropic/cassettes/pydantic-ai.thinking-stream.yaml")[0]), b"\n\n")))
    anthropic.append(("tool-no-args", cut(sse_from_lines("anthropic/chunks/vercel.anthropic-tool-no-args.chunks.txt", event_names=True), b"\n\n")))
    anthropic.append((
        "overloaded-mid-stream",
        b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude","usage":{"input_tokens":3}}}\n\n'
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n',
    ))
    gemini = [(p.split("/")[-1], cut(read(p), b"\r\n\r\n")) for p in GEMINI_SSE]
    gemini.append(("tool-call-crlf", cut(sse_from_lines("gemini/chunks/vercel.google-tool-call.chunks.txt", line_end=b"\r\n"), b"\r\n\r\n")))
    gemini.append(("error-mid-stream", b'data: {"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}\r\n\r\n'))
    return openai, engines, anthropic, gemini


def sse_parser_corpus(openai, anthropic, gemini):
    corpus = Corpus("FuzzSSEParser")
    for index, (name, data) in enumerate(openai[:3] + anthropic[:3] + gemini[:3]):
        corpus.add(name, plan(*[(7, 1, 64, 3, 0, 200)[(index + k) % 6] for k in range(index % 4 + 1)]) + data)
    unit = [
        b"event: first\ndata: one\n\n: comment\ndata:{\"no\":\"space\"}\r\n\r\ndata: line 1\rdata: line 2\r\r",
        b"id: 7\nretry: 10\ndata: caf\xc3\xa9 \xf0\x9f\x98\x80\r\ndata\n\nevent: last\r\ndata: [DONE]\r\n\r\n",
        b"\xef\xbb\xbfdata: after a byte-order mark\n\n",
        b"data: a\r\rdata: b\r\n\r\ndata: unterminated",
        b"event: only-a-name\n\ndata:  two spaces \ndata:\tx\n\n",
    ]
    for index, data in enumerate(unit):
        corpus.add("unit", plan(*[(1, 2, 3, 5, 0)[(index + k) % 5] for k in range(index % 3)]) + data)


def stream_corpora(openai, engines, anthropic, gemini):
    corpus = Corpus("FuzzOpenAIStream")
    for index, (name, data) in enumerate(openai):
        corpus.add(name, bytes([(index & 1) | (index % 2) << 1]) + plan(*(13, 1, 200)[: 1 + index % 3]) + data)
    for index, (name, data) in enumerate(engines):
        corpus.add(name, bytes([0b100 | (index & 1)]) + plan(*(9, 64)[: 1 + index % 2]) + data)
        corpus.add(name + "-usage", bytes([0b101 | (index % 3 == 2) << 3]) + plan(3, 1, 40) + data)
    for target, seeds in (("FuzzAnthropicStream", anthropic), ("FuzzGeminiStream", gemini)):
        corpus = Corpus(target)
        for index, (name, data) in enumerate(seeds):
            corpus.add(name, bytes([index & 1 | (index & 6)]) + plan(*(17, 2, 150)[: 1 + index % 3]) + data)


def json_corpus(openai, anthropic, gemini):
    corpus = Corpus("FuzzJSONScanner")
    documents = [
        read("openai/json/vercel.openai-text.json"),
        read("anthropic/json/vercel.anthropic-text.json"),
        read("gemini/json/text.firebase.json"),
        read("gemini/errors/vercel.429-RESOURCE_EXHAUSTED-retryinfo.json"),
        read("openai/errors/vercel.400-unsupported_parameter.json"),
    ]
    for _, data in (openai[0], openai[2], anthropic[1], gemini[1]):
        lines = [line[6:] for line in data.splitlines() if line.startswith(b"data: {")]
        documents += lines[:1] + lines[-1:]
    documents += [
        rb'{"a":{"b":{"c":[{"d":null}]}},"e":[[],[[]]],"f":"\u00e9\ud83d\ude00\n"}',
        rb'{ "model" : "gpt-4o" ,"n":12,"list":[1, [2], {"x":3}],"obj":{"inner":true},"none":null }',
        rb'{"mo\u0064el":"a","a\"b":1,"mode":2,"models":3,"stream":4}',
        rb'["x\uD83D\uDE00y","lone \ud83d high","\"\\\/\b\f\n\r\t","\u0041\u0000z"]',
        b'[0,-0,7,-12,3.25,-0.5,1e10,1E+2,2.5e-3,-9223372036854775808,9223372036854775807,9223372036854775808]',
        b'{"t":true,"f":false,"n":null,"s":"true","e":"","stop":"stop"}',
        b"[" * 127 + b"]" * 127,
    ]
    for data in documents:
        corpus.add("doc", cut(data, b","))


def request_head_corpus():
    corpus = Corpus("FuzzRequestHead")
    bodies = []
    for interaction in cassette("openai/cassettes/newrelic.openai-chat-and-errors.yaml"):
        body = request_text(interaction)
        if body and body not in bodies:
            bodies.append(body)
    bodies.append(request_text(cassette("openai/cassettes/pydantic-ai.chat-stream-tool-call-include_usage.yaml")[0]))
    bodies += [
        rb'{"model":"chat\"large\u00e9","mod\u0065l":"x"}',
        rb'{"model":"m","stream":true,"stream_options":{"include_usage":true}}',
        rb'{"stream_options" : { "include_usage" : true },"stream":true,"model":"a"}',
        rb'{"model":"m","stream":true,"stream_options":null,"n":2}',
        rb'{"model":"m","stream":true,"stream_options":{"include_obfuscation":false,"include_usage":false}}',
        rb'{"model":"m","max_tokens":100,"max_completion_tokens":50,"stream":false}',
        rb'{"model":"m","max_tokens":null,"max_completion_tokens":16777216}',
        b'  {"model":"embed","input":["a","b"],"encoding_format":"float"} \n',
        rb'{"model":"m","stream":"true"}',
    ]
    for index, body in enumerate(bodies):
        corpus.add("body", bytes([index % 4]) + cut(body, b","))


def responses_corpus():
    corpus = Corpus("FuzzResponses")
    for path in sorted((FIXTURES).glob("*/http/*.http")):
        corpus.add(path.stem, cut(path.read_bytes(), b"\n"))
    for path, status in [
        ("openai/json/vercel.openai-text.json", 200),
        ("anthropic/json/vercel.anthropic-text.json", 200),
        ("gemini/json/text.firebase.json", 200),
        ("gemini/json/vercel.google-text.json", 200),
        ("local-engines/tgi/chat-tool-call-nonstream.json", 200),
        ("gemini/errors/vercel.429-RESOURCE_EXHAUSTED-retryinfo.json", 429),
        ("gemini/errors/400-API_KEY_INVALID.firebase.json", 400),
        ("gemini/errors/404-unknown-model.firebase.json", 404),
        ("openai/errors/vercel.400-unsupported_parameter.json", 400),
    ]:
        corpus.add(pathlib.Path(path).stem, http_text(status, [("content-type", "application/json")], cut(read(path), b",")))
    openai = cassette("openai/cassettes/newrelic.openai-chat-and-errors.yaml")
    headers = [(name, values[0]) for name, values in openai[0]["response"]["headers"].items()]
    corpus.add("openai-ratelimit-429", http_text(429, headers + [("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")], response_text(openai[1])))
    for exchange in json.loads(read("anthropic/recorded/anthropic-sdk-python.200-with-ratelimit-headers.json"))[:1] + \
            json.loads(read("anthropic/recorded/anthropic-sdk-python.400-invalid_request_error.json"))[1:]:
        headers = list(exchange["response"]["headers"].items())
        body = json.dumps(exchange["response"]["body"]).encode()
        corpus.add("anthropic-recorded", http_text(exchange["response"]["status_code"], headers, cut(body, b",")))
    # Found by FuzzResponses (FuzzRegressionTests): an OpenAI-shaped body with status 0.
    corpus.add("regression-status-0", b'0\n{"error":{}}')
    corpus.add("anthropic-overloaded", http_text(529, [("x-should-retry", "true"), ("retry-after-ms", "1500")],
                                                 b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'))


def main():
    openai, engines, anthropic, gemini = stream_seeds()
    sse_parser_corpus(openai, anthropic, gemini)
    stream_corpora(openai, engines, anthropic, gemini)
    json_corpus(openai, anthropic, gemini)
    request_head_corpus()
    responses_corpus()


if __name__ == "__main__":
    main()
