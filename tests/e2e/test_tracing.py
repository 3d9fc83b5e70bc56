"""Traces over OTLP/HTTP, received by a real collector stand-in (decoded with the
`opentelemetry-proto` package): a server span per inference request, its children
(authenticate, each upstream attempt with the failover reason, relay), the GenAI
attributes, an incoming `traceparent` continued, and the upstream handed one of the same
trace."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from conftest import free_port, running_deployment, tenant_key

PATIENCE = 20
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


class Collector:
    """An OTLP/HTTP trace receiver: every span it is sent, by span id."""

    def __init__(self) -> None:
        self.spans: dict[str, dict] = {}
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.take(request, self.path, self.headers.get("content-type", ""))
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, request, path: str, content_type: str) -> None:
        assert path == "/v1/traces" and content_type == "application/x-protobuf", (path, content_type)
        with self.lock:
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        self.spans[span.span_id.hex()] = {
                            "name": span.name, "kind": span.kind, "trace": span.trace_id.hex(),
                            "id": span.span_id.hex(), "parent": span.parent_span_id.hex(), "service": service,
                            "status": span.status.code, "attributes": {a.key: value_of(a.value) for a in span.attributes},
                        }

    def request_spans(self, request_id: str) -> list[dict]:
        """The server span of the request and every span below it, once its server span is in."""
        deadline = time.monotonic() + PATIENCE
        while True:
            with self.lock:
                spans = list(self.spans.values())
            servers = [s for s in spans if s["attributes"].get("switchyard.request_id") == request_id]
            if servers:
                server = servers[0]
                children = [s for s in spans if s["parent"] == server["id"]]
                if any(s["name"] == "relay" for s in children):
                    return [server, *children]
            assert time.monotonic() < deadline, f"no spans of {request_id} arrived"
            time.sleep(0.1)

    def stop(self) -> None:
        self.server.shutdown()


def value_of(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Upstream:
    """An OpenAI-compatible provider that records the `traceparent` of each request."""

    def __init__(self) -> None:
        self.traceparents: list[str | None] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
                upstream.traceparents.append(self.headers.get("traceparent"))
                if body.get("stream"):
                    chunks = [
                        {"choices": [{"index": 0, "delta": {"content": "traced"}, "finish_reason": None}]},
                        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                        {"choices": [], "usage": USAGE},
                    ]
                    payload = b"".join(b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1,
                                                               "model": body["model"], **c}).encode() + b"\n\n" for c in chunks)
                    payload += b"data: [DONE]\n\n"
                    content_type = "text/event-stream"
                else:
                    payload = json.dumps({
                        "id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "traced"}, "finish_reason": "stop"}],
                        "usage": USAGE,
                    }).encode()
                    content_type = "application/json"
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def engine_down_openai_at(upstream: Upstream):
    """chat-small's engine pool unreachable, so each request fails over to its OpenAI
    deployment, which is the test's upstream."""
    dead = free_port()

    def configure(config: dict) -> None:
        for pool in config["engine_pools"]:
            for replica in pool["replicas"]:
                replica["url"] = f"http://127.0.0.1:{dead}/v1"
        for provider in config["providers"]:
            if provider["id"] == "openai":
                provider["base_url"] = upstream.url
    return configure


@pytest.fixture()
def traced():
    collector, upstream = Collector(), Upstream()
    try:
        with running_deployment(
            "switchyard-e2e-traces-", serve_args=("--otlp-endpoint", collector.url),
            environment_overrides={"OPENAI_API_KEY": "sk-test-tracing-0000000000000000", "OTEL_BSP_SCHEDULE_DELAY": "100"},
            configure=engine_down_openai_at(upstream),
        ) as running:
            tenant = running.cli_json("tenant", "create", "--name", "traced", "--tier", "enterprise")
            yield running, collector, upstream, tenant_key(running, tenant["id"])["key"]
    finally:
        collector.stop()
        upstream.stop()


def test_a_request_with_a_failover_is_one_trace_with_genai_attributes_and_the_upstream_continues_it(traced):
    deployment, collector, upstream, key = traced
    client = openai.OpenAI(base_url=deployment.proxy + "/v1", api_key=key, max_retries=0)
    answer = client.chat.completions.with_raw_response.create(
        model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert answer.parse().choices[0].message.content == "traced"
    spans = collector.request_spans(answer.headers["x-request-id"])
    server, children = spans[0], spans[1:]
    assert server["kind"] == 2 and server["parent"] == "" and server["service"] == "switchyard"  # SPAN_KIND_SERVER
    assert server["name"] == "chat chat-small"
    attributes = server["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "chat-small" and attributes["gen_ai.response.model"] == "chat-small"
    assert attributes["gen_ai.usage.input_tokens"] == 9 and attributes["gen_ai.usage.output_tokens"] == 4
    assert attributes["gen_ai.provider.name"] == "openai" and attributes["http.response.status_code"] == 200
    assert all(span["trace"] == server["trace"] for span in children)
    names = [span["name"] for span in children]
    assert "authenticate" in names and "relay" in names
    attempts = [span for span in children if span["kind"] == 3]  # SPAN_KIND_CLIENT
    assert len(attempts) == 2, names
    failed = [span for span in attempts if "switchyard.failover.reason" in span["attributes"]]
    served = [span for span in attempts if "switchyard.failover.reason" not in span["attributes"]]
    assert len(failed) == 1 and "unreachable" in failed[0]["attributes"]["switchyard.failover.reason"]
    assert failed[0]["attributes"]["switchyard.deployment"] == "local-llama-8b" and failed[0]["status"] == 2  # ERROR
    assert served[0]["attributes"]["gen_ai.provider.name"] == "openai"
    assert served[0]["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    # The upstream was handed the served attempt's context: same trace, that span as parent.
    assert upstream.traceparents[-1] == f"00-{server['trace']}-{served[0]['id']}-01"


def test_an_incoming_traceparent_is_continued_through_a_stream(traced):
    deployment, collector, upstream, key = traced
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = httpx.post(deployment.proxy + "/v1/chat/completions", timeout=30, headers={
        "authorization": f"Bearer {key}", "traceparent": f"00-{trace_id}-{parent_id}-01",
    }, json={"model": "chat-small", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert response.status_code == 200 and "data: [DONE]" in response.text
    spans = collector.request_spans(response.headers["x-request-id"])
    server = spans[0]
    assert server["trace"] == trace_id and server["parent"] == parent_id
    assert server["attributes"]["switchyard.stream"] is True
    assert upstream.traceparents[-1].startswith(f"00-{trace_id}-")


def test_without_an_endpoint_nothing_is_traced_or_propagated():
    upstream = Upstream()
    try:
        with running_deployment(
            "switchyard-e2e-untraced-",
            environment_overrides={"OPENAI_API_KEY": "sk-test-tracing-0000000000000000", "OTEL_EXPORTER_OTLP_ENDPOINT": None},
            configure=engine_down_openai_at(upstream),
        ) as running:
            tenant = running.cli_json("tenant", "create", "--name", "untraced", "--tier", "enterprise")
            key = tenant_key(running, tenant["id"])["key"]
            client = openai.OpenAI(base_url=running.proxy + "/v1", api_key=key, max_retries=0)
            client.chat.completions.create(model="chat-small", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
            assert upstream.traceparents == [None]
    finally:
        upstream.stop()
