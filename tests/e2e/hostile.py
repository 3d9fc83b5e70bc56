"""Hostile input for `switchyard serve`: a seeded corpus of malformed requests over every
route family, a raw-socket HTTP/1.1 client for the shapes a well-behaved client cannot
send, the checks every answer must pass, and a runner that survives the server crashing.

Used by test_hostile_input.py. Nothing here starts a server by itself; `HostileDeployment`
does, on the caller's request.
"""

from __future__ import annotations

import asyncio
import base64
import http.cookiejar
import copy
import hashlib
import hmac
import json
import os
import random
import subprocess
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import httpx

from conftest import (
    ADMIN_TOKEN, BCRYPT_COST, ORG_ADMIN_PASSWORD, REPO, binary, free_port, invite_user, org_admin_session, stop, tenant_key,
    wait_for,
)

SEED = int(os.environ.get("HOSTILE_SEED", "20261201"))
# serve runs with a small --max-body-bytes so that oversized bodies are cheap to send.
MAX_BODY_BYTES = 65536
# The management API has its own, fixed limit (AdminController.maximumBodyBytes).
ADMIN_MAX_BODY_BYTES = 64 << 10
# How long a well-formed exchange may take before it counts as a hang.
HTTP_TIMEOUT = 10.0
# How long the server has to answer `Expect: 100-continue` (with 100 or a final status)
# before the client sends the body anyway.
EXPECT_WAIT = 2.0
# How long a raw exchange waits for the (first) response.
RAW_TIMEOUT = 6.0
# After a response to a framing error, how long to wait for the server to close.
CLOSE_WAIT = 1.5

# The request a smuggling shape hides behind its body: if the server answers it, the
# framing was read two ways.
SMUGGLED = b"GET /hostile-smuggled-canary HTTP/1.1\r\nHost: smuggled\r\n\r\n"

# Statuses in the 5xx range that are the right answer for a case, and why. Nothing else
# may be 5xx: the upstream is the healthy simulator.
UNKNOWN_METHOD_501 = {
    501: "RFC 9110 §9.1: a method the origin server does not recognise or implement SHOULD get 501"
}
UNKNOWN_CODING_501 = {
    501: "RFC 9112 §6.1: a transfer coding the server does not understand SHOULD get 501"
}
VERSION_505 = {505: "RFC 9110 §15.6.6: 505 is the status for an HTTP major version the server does not support"}

FOUR_XX = frozenset(range(400, 500))


# MARK: - Cases


@dataclass
class Case:
    """One generated request and what a correct server does with it."""

    family: str
    kind: str
    description: str
    method: str = "GET"
    path: str = "/"
    headers: list = field(default_factory=list)
    body: Optional[bytes] = None
    # A complete raw request for the socket client; None sends through httpx.
    raw: Optional[bytes] = None
    # Acceptable statuses; None: any status below 500 (plus allowed_5xx).
    expect: Optional[frozenset] = None
    allowed_5xx: dict = field(default_factory=dict)
    # Why a connection closed without any response is a right answer, when it is.
    close_ok: Optional[str] = None
    # Framing errors: the server must close the connection after its response and must
    # not answer the request smuggled behind the body.
    must_close: bool = False
    # Raw: shut our write side if no response came within this many seconds.
    halfclose_after: Optional[float] = None
    # Raw: send `raw` (the head) first, wait for 100 Continue or a final status, then this.
    expect_body: Optional[bytes] = None
    # The `error.code` an error answer must carry, when one is the point of the case.
    code: Optional[str] = None
    id: str = ""

    @property
    def transport(self) -> str:
        return "raw" if self.raw is not None else "http"

    def label(self) -> str:
        return f"[{self.id} {self.family}/{self.kind}] {self.method} {short(self.path, 80)}: {self.description}"


def short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit})"


def excerpt(body: bytes, limit: int = 240) -> str:
    text = repr(body[:limit])
    return text + (f"...(+{len(body) - limit} bytes)" if len(body) > limit else "")


@dataclass(frozen=True)
class Context:
    """The ids and secrets the corpus refers to, made at setup."""

    tenant_id: str = "ten_main"
    tenant_name: str = "hostile-main"
    key: str = "sk-sy-" + "A" * 43
    limited_tenant_id: str = "ten_limited"
    limited_key: str = "sk-sy-" + "B" * 43
    victim_tenant_id: str = "ten_victim"
    victim_key_id: str = "key_victim"
    other_tenant_id: str = "ten_other"
    revoked_key: str = "sk-sy-" + "C" * 43
    provider_key_id: str = "pk_setup"
    retire_key_id: str = "pk_retire"
    admin_token: str = ADMIN_TOKEN
    # A session of an org admin of the victim tenant: the system admin (the admin token)
    # may not create tenant keys, an org admin does.
    org_admin_token: str = "sy-session-" + "D" * 43
    # An org user of the victim tenant, for signing in and for duplicate emails.
    login_email: str = "hostile-login@hostile.example"
    login_password: str = ORG_ADMIN_PASSWORD
    # An open invite to the victim tenant, accepted by one sanity case.
    invite_token: str = "sy-invite-" + "E" * 43


def csrf_token(session: str) -> str:
    """The CSRF token of a session (ManagementAuthenticator.csrfToken): HMAC-SHA256 of
    "switchyard-csrf" keyed by the session's secret, base64url without padding."""
    mac = hmac.new(session.encode(), b"switchyard-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def bearer(token: str) -> list:
    return [("authorization", f"Bearer {token}")]


JSON_HEADERS = [("content-type", "application/json")]


def render(obj: Any, raw: Optional[dict] = None) -> bytes:
    """JSON text of `obj`, with each marker string (value or key) replaced by raw bytes."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    for marker, replacement in (raw or {}).items():
        quoted = json.dumps(marker).encode()
        assert quoted in text, marker
        text = text.replace(quoted, replacement)
    return text


def set_path(obj: Any, path: tuple, value: Any) -> Any:
    """A deep copy of `obj` with the member at `path` (keys and indices) set to `value`."""
    result = copy.deepcopy(obj)
    target = result
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return result


def path_name(path: tuple) -> str:
    name = ""
    for step in path:
        name += f"[{step}]" if isinstance(step, int) else ("." if name else "") + step
    return name


# Values of every JSON type, to put where another type belongs.
WRONG_VALUES = [
    ("null", None, "null"),
    ("true", True, "boolean"),
    ("false", False, "boolean"),
    ("0", 0, "integer"),
    ("-7", -7, "integer"),
    ("2.5", 2.5, "number"),
    ('""', "", "string"),
    ('"hostile"', "hostile", "string"),
    ('"12"', "12", "string"),
    ("[]", [], "array"),
    ('[1,"two",null]', [1, "two", None], "array"),
    ("{}", {}, "object"),
    ('{"k":"v"}', {"k": "v"}, "object"),
]


def type_matches(expected: str, actual: str) -> bool:
    accepted = set(expected.split("|"))
    if "number" in accepted:
        accepted.add("integer")
    return actual in accepted


# Numeric extremes, as JSON text (1e999 and friends cannot be written by json.dumps).
NUMERIC_EXTREMES = [
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "4611686018427387904",
    "2147483648",
    "123456789012345678901234567890123456789",
    "1e308",
    "1e999",
    "-1e999",
    "-1",
    "0",
    "0.5",
    "-0.0",
    "1E2",
    "1.0",
]
# The extremes every numeric field gets, at least.
REQUIRED_EXTREMES = ["9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e308", "1e999", "-1",
                     "0", "18446744073709551616", "0.5"]
# Values that are not a non-negative integer of at most 64 bits, whatever parser reads them.
NOT_A_COUNT = {"-1", "-9223372036854775808", "-9223372036854775809", "0.5", "1e308", "1e999", "-1e999"}

# Bytes that are not valid UTF-8 or JSON inside a string, and escapes that decode to what
# a name must not hold.
BAD_STRING_BYTES = [
    ("invalid UTF-8 byte 0xFF", b"\xff", "raw"),
    ("lone continuation byte 0x80", b"\x80", "raw"),
    ("overlong NUL C0 80", b"\xc0\x80", "raw"),
    ("UTF-8-encoded surrogate ED A0 80", b"\xed\xa0\x80", "raw"),
    ("code point above U+10FFFF", b"\xf4\x90\x80\x80", "raw"),
    ("truncated 3-byte sequence", b"\xe2\x82", "raw"),
    ("raw NUL byte", b"\x00", "raw"),
    ("raw control byte 0x01", b"\x01", "raw"),
    ("raw newline", b"\n", "raw"),
    ("escaped NUL \\u0000", b"\\u0000", "escape"),
    ("lone surrogate escape \\ud800", b"\\ud800", "escape"),
    ("reversed surrogates \\udfff\\ud800", b"\\udfff\\ud800", "escape"),
]

# Control characters (and lookalikes) to put in names.
CONTROL_NAMES = [
    ("U+0001", "\u0001", True),
    ("BEL U+0007", "a\u0007b", True),
    ("ANSI escape", "\u001b[31mred\u001b[0m", True),
    ("NUL U+0000", "nul\u0000name", True),
    ("newline", "line\nbreak", True),
    ("carriage return", "fake\rlog", True),
    ("tab", "tab\tname", True),
    ("DEL U+007F", "del\u007f", True),
    ("C1 NEL U+0085", "nel\u0085", True),
    ("C1 CSI U+009B", "csi\u009b31m", True),
    # Not control characters (Cc), but worth a look: any non-5xx answer will do.
    ("line separator U+2028", "ls\u2028name", False),
    ("bidi override U+202E", "\u202eevil", False),
    ("zero-width space", "zero\u200bwidth", False),
    ("emoji", "rocket \U0001f680", False),
]


class Corpus:
    """Builds the cases, deterministically from one seeded random.Random."""

    def __init__(self, ctx: Context, seed: int = SEED):
        self.ctx = ctx
        self.seed = seed
        self.rng = random.Random(seed)
        self.cases: list[Case] = []
        self.serial = 0

    def add(self, case: Case) -> None:
        self.cases.append(case)

    def unique(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial:04d}"

    # MARK: inference

    INFERENCE = {
        "chat/completions": dict(
            family="chat",
            base={"model": "chat-small", "messages": [{"role": "user", "content": "hello hostile world"}], "max_tokens": 4},
            fields={
                ("model",): "string",
                ("messages",): "array",
                ("messages", 0): "object",
                ("messages", 0, "role"): "string",
                ("messages", 0, "content"): "string|array",
                ("max_tokens",): "integer",
                ("max_completion_tokens",): "integer",
                ("stream",): "boolean",
                ("stream_options",): "object",
                ("temperature",): "number",
                ("top_p",): "number",
                ("n",): "integer",
                ("presence_penalty",): "number",
                ("frequency_penalty",): "number",
                ("seed",): "integer",
                ("stop",): "string|array",
                ("user",): "string",
                ("logprobs",): "boolean",
                ("top_logprobs",): "integer",
                ("tools",): "array",
                ("response_format",): "object",
                ("reasoning_effort",): "string",
                ("messages", 0, "thinking_blocks"): "array",
            },
            numeric=["max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "presence_penalty",
                     "frequency_penalty", "seed", "top_logprobs"],
            strings=[("model",), ("messages", 0, "content"), ("messages", 0, "role"), ("user",), ("reasoning_effort",)],
            streams=True,
        ),
        "completions": dict(
            family="completions",
            base={"model": "chat-small", "prompt": "hello hostile world", "max_tokens": 4},
            fields={
                ("model",): "string",
                ("prompt",): "string|array",
                ("max_tokens",): "integer",
                ("stream",): "boolean",
                ("stream_options",): "object",
                ("temperature",): "number",
                ("top_p",): "number",
                ("n",): "integer",
                ("best_of",): "integer",
                ("logprobs",): "integer",
                ("echo",): "boolean",
                ("suffix",): "string",
                ("seed",): "integer",
                ("stop",): "string|array",
                ("user",): "string",
            },
            numeric=["max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "best_of", "logprobs", "seed"],
            strings=[("model",), ("prompt",), ("suffix",)],
            streams=True,
        ),
        "embeddings": dict(
            family="embeddings",
            base={"model": "embed-small", "input": ["hostile", "input"]},
            fields={
                ("model",): "string",
                ("input",): "string|array",
                ("input", 0): "string|integer",
                ("dimensions",): "integer",
                ("encoding_format",): "string",
                ("user",): "string",
                ("stream",): "boolean",
            },
            # max_tokens is no embeddings field, but the proxy reads it on every endpoint.
            numeric=["dimensions", "max_tokens", "max_completion_tokens"],
            strings=[("model",), ("input", 0), ("encoding_format",)],
            streams=False,
        ),
    }

    # Fields the proxy itself reads and validates (InferenceRequestHead); every other
    # field goes upstream unchanged and the simulator decides.
    PROXY_VALIDATED = {("model",), ("stream",), ("max_tokens",), ("max_completion_tokens",), ("stream_options",),
                       ("reasoning_effort",)}

    def prefix(self, key: str) -> tuple[str, str]:
        """A base path and family prefix: /v1, or the tenant-scoped copy (by id or name) of
        the tenant that owns `key`."""
        ctx = self.ctx
        tenant_id, tenant_name = (ctx.limited_tenant_id, "hostile-limited") if key == ctx.limited_key \
            else (ctx.tenant_id, ctx.tenant_name)
        roll = self.rng.random()
        if roll < 0.25:
            return f"/tenants/{tenant_id}/v1", "scoped"
        if roll < 0.32:
            return f"/tenants/{tenant_name}/v1", "scoped"
        return "/v1", "inference"

    def inference_case(self, endpoint: str, kind: str, description: str, body: bytes, *,
                       expect=None, key: Optional[str] = None, prefix: Optional[tuple] = None,
                       headers: Optional[list] = None) -> None:
        spec = self.INFERENCE[endpoint]
        base, family = prefix or self.prefix(key or self.ctx.key)
        auth = bearer(key or self.ctx.key) if headers is None else headers
        self.add(Case(
            family=f"{family}-{spec['family']}", kind=kind, description=description, method="POST",
            path=f"{base}/{endpoint}", headers=auth + JSON_HEADERS, body=body, expect=expect,
        ))

    def build_inference(self) -> None:
        rng = self.rng
        for endpoint, spec in self.INFERENCE.items():
            base_body = spec["base"]
            # Mistyped: every field, wrong types.
            for path, expected in spec["fields"].items():
                wrong = [v for v in WRONG_VALUES if not type_matches(expected, v[2])]
                count = 6 if path in self.PROXY_VALIDATED else 4
                for label, value, kind in rng.sample(wrong, min(len(wrong), count)):
                    body = set_path(base_body, path, value)
                    if path in self.PROXY_VALIDATED and not (value is None):
                        expect = frozenset({400})
                    else:
                        expect = None
                    if path == ("stream",) and endpoint == "embeddings" and value is True:
                        expect = frozenset({400})
                    self.inference_case(endpoint, "mistyped", f"{path_name(path)} = {label} (wants {expected})",
                                        render(body), expect=expect)
            # Huge, negative and fractional numbers at every numeric field, for the
            # unlimited tenant and (for the counts the proxy reads) the limited one.
            for name in spec["numeric"]:
                values = NUMERIC_EXTREMES
                if name not in ("max_tokens", "max_completion_tokens"):
                    # Fields the proxy does not read get the required extremes and a few more.
                    extras = [v for v in NUMERIC_EXTREMES if v not in REQUIRED_EXTREMES]
                    values = REQUIRED_EXTREMES + rng.sample(extras, 3)
                for text in values:
                    tenants = [("main", self.ctx.key)]
                    if name in ("max_tokens", "max_completion_tokens"):
                        tenants.append(("limited", self.ctx.limited_key))
                    for who, key in tenants:
                        body = dict(base_body)
                        body.pop("max_tokens", None)
                        body[name] = "__NUM__"
                        stream = spec["streams"] and rng.random() < 0.25
                        if stream:
                            body["stream"] = True
                        expect = None
                        if name in ("max_tokens", "max_completion_tokens") and text in NOT_A_COUNT:
                            expect = frozenset({400})
                        self.inference_case(
                            endpoint, "numeric_extreme",
                            f"{name} = {text} ({who} tenant{', stream' if stream else ''})",
                            render(body, {"__NUM__": text.encode()}), expect=expect, key=key,
                        )
            # Truncated JSON at seeded cut points.
            valid = render(dict(base_body, temperature=0.5, user="hostile-user"))
            cuts = sorted(set([1, len(valid) - 1] + rng.sample(range(2, len(valid) - 1), 6)))
            for cut in cuts:
                self.inference_case(endpoint, "truncated_json", f"body cut at byte {cut} of {len(valid)}",
                                    valid[:cut], expect=frozenset({400}))
            # Deep nesting.
            for description, body, expect in self.deep_bodies(base_body):
                self.inference_case(endpoint, "deep_nesting", description, body, expect=expect)
            # Invalid UTF-8 and NUL bytes in strings and keys.
            for path in spec["strings"]:
                for label, raw, how in rng.sample(BAD_STRING_BYTES, 5):
                    original = base_body
                    for step in path:
                        original = original[step] if isinstance(original, list) or step in original else "hostile"
                    marker = "__BAD__"
                    body = set_path(base_body, path, marker)
                    text = json.dumps(original)[1:-1].encode() if isinstance(original, str) else b"x"
                    raw_value = b'"' + text[:3] + raw + text[3:] + b'"'
                    if how == "raw":
                        expect = FOUR_XX  # not JSON: the proxy or the simulator must refuse it
                    elif path == ("model",):
                        expect = frozenset({400, 404})
                    else:
                        expect = None
                    self.inference_case(endpoint, "bad_bytes", f"{label} inside {path_name(path)}",
                                        render(body, {marker: raw_value}), expect=expect)
            for label, raw, how in rng.sample(BAD_STRING_BYTES, 4):
                body = dict(base_body)
                body["__KEY__"] = 1
                raw_key = b'"meta' + raw + b'data"'
                self.inference_case(endpoint, "bad_bytes", f"{label} inside a key",
                                    render(body, {"__KEY__": raw_key}), expect=FOUR_XX if how == "raw" else None)
            # Control characters in the model name.
            for label, name, _ in rng.sample(CONTROL_NAMES, 5):
                self.inference_case(endpoint, "control_chars", f"model name with {label}",
                                    render(dict(base_body, model=base_body["model"] + name)),
                                    expect=frozenset({400, 404}))
            # Not JSON, or JSON of the wrong shape.
            for description, body, expect in self.not_json_bodies(base_body):
                self.inference_case(endpoint, "not_json", description, body, expect=expect)
            # Oversized bodies (serve runs with --max-body-bytes 65536).
            for size in (MAX_BODY_BYTES + 1, 70_000, 300_000):
                self.inference_case(endpoint, "oversized_body", f"{size}-byte body over --max-body-bytes",
                                    self.padded(base_body, size), expect=frozenset({413}))
            self.inference_case(endpoint, "oversized_body", f"{MAX_BODY_BYTES}-byte body, exactly the limit",
                                self.padded(base_body, MAX_BODY_BYTES))
            # Bad auth.
            for description, headers, expect in rng.sample(self.bad_inference_auth(), 7):
                self.inference_case(endpoint, "bad_auth", description, render(base_body),
                                    headers=headers, expect=expect, prefix=("/v1", "inference"))
            # A key used under another tenant's scope, or an unknown one: 404 either way.
            for scope in (self.ctx.other_tenant_id, "ten_does_not_exist", "%00", "%2e%2e", "a" * 300):
                self.inference_case(endpoint, "bad_scope", f"tenant scope {short(scope, 20)!r} the key does not belong to",
                                    render(base_body), prefix=(f"/tenants/{scope}/v1", "scoped"),
                                    expect=frozenset({404}))

    def padded(self, base_body: dict, size: int) -> bytes:
        body = dict(base_body, user="")
        text = render(body)
        pad = size - len(text)
        return render(dict(base_body, user="p" * pad))

    def deep_bodies(self, base_body: dict, rng: Optional[random.Random] = None) -> list:
        rng = rng or self.rng
        marker = "__DEEP__"
        shapes = [
            ("60,000 unclosed [ as the body", b"[" * 60_000, frozenset({400})),
            ("100,000 unclosed [ (over the body limit)", b"[" * 100_000, frozenset({413})),
            ("12,000 unclosed {\"a\": as the body", b'{"a":' * 12_000, frozenset({400})),
            ("30,000 closed [] in a field", render(dict(base_body, metadata=marker), {marker: b"[" * 30_000 + b"]" * 30_000}), FOUR_XX),
            ("10,000 closed {\"a\":{...}} in a field", render(dict(base_body, metadata=marker), {marker: b'{"a":' * 10_000 + b"1" + b"}" * 10_000}), FOUR_XX),
            ("1,000 unclosed [ in a field", render(dict(base_body, metadata=marker), {marker: b"[" * 1000}), frozenset({400})),
            ("600 closed [] in a field", render(dict(base_body, metadata=marker), {marker: b"[" * 600 + b"]" * 600}), None),
            ("20,000 [{\"a\": alternating, unclosed", b"{\"x\":" + b'[{"a":' * 10_000, frozenset({400})),
        ]
        return shapes[:2] + rng.sample(shapes[2:], 4)

    def not_json_bodies(self, base_body: dict, rng: Optional[random.Random] = None) -> list:
        valid = render(base_body)
        bodies = [
            ("empty body", b"", frozenset({400})),
            ("whitespace only", b" \r\n\t ", frozenset({400})),
            ("JSON null", b"null", frozenset({400})),
            ("JSON array of the body", b"[" + valid + b"]", frozenset({400})),
            ("JSON string", b'"model"', frozenset({400})),
            ("JSON number", b"12345", frozenset({400})),
            ("form-encoded", b"model=chat-small&max_tokens=4", frozenset({400})),
            ("XML", b"<request><model>chat-small</model></request>", frozenset({400})),
            ("trailing garbage after the object", valid + b"xyz", frozenset({400})),
            ("two objects", valid + valid, frozenset({400})),
            ("comment inside", valid[:1] + b"/* c */" + valid[1:], frozenset({400})),
            ("NaN literal", valid[:-1] + b',"temperature":NaN}', frozenset({400})),
            ("single quotes", valid.replace(b'"', b"'"), frozenset({400})),
            # Foundation's JSONDecoder (the management API) takes a trailing comma: lenient, harmless.
            ("trailing comma", valid[:-1] + b",}", None),
            ("UTF-8 BOM before the object", b"\xef\xbb\xbf" + valid, None),
            # RFC 8259 §8.1 wants UTF-8, but a decoder that detects UTF-16 by its BOM is lenient, not wrong.
            ("UTF-16 encoded", valid.decode().encode("utf-16"), None),
            ("duplicate model key", valid[:-1] + b',"model":"no-such-model"}', None),
            ("unterminated string", b'{"model":"chat-small', frozenset({400})),
        ]
        return (rng or self.rng).sample(bodies, 12)

    def bad_inference_auth(self) -> list:
        ctx = self.ctx
        unauthorized = frozenset({401})
        return [
            ("no Authorization header", [], unauthorized),
            ("Authorization: Bearer (no token)", [("authorization", "Bearer")], unauthorized),
            ("Bearer garbage", [("authorization", "Bearer garbage-!@#$%^&*()")], unauthorized),
            ("well-formed unknown sk-sy- key", bearer("sk-sy-" + "Z" * 43), unauthorized),
            ("sk-sy- key one character short", bearer(ctx.key[:-1]), unauthorized),
            ("sk-sy- key one character long", bearer(ctx.key + "x"), unauthorized),
            ("10 KB token", bearer("sk-sy-" + "k" * 10_000), unauthorized),
            ("Basic auth", [("authorization", "Basic dXNlcjpwYXNz")], unauthorized),
            ("the admin token", bearer(ctx.admin_token), unauthorized),
            ("a revoked key", bearer(ctx.revoked_key), unauthorized),
            ("non-ASCII token (UTF-8 bytes)", [("authorization", "Bearer sk-sy-é€ü".encode())], unauthorized),
            ("Latin-1 bytes in token", [("authorization", b"Bearer sk-sy-\xff\xfe\xfd")], unauthorized),
            ("lowercase scheme 'bearer' with the valid key", [("authorization", f"bearer {ctx.key}")], None),
            ("two Authorization headers, valid and invalid", bearer(ctx.key) + bearer("nope"), None),
            ("token then garbage", bearer(ctx.key + " trailing"), unauthorized),
        ]

    def build_models(self) -> None:
        ctx = self.ctx
        for base, family in (("/v1", "inference"), (f"/tenants/{ctx.tenant_id}/v1", "scoped"),
                             (f"/tenants/{ctx.tenant_name}/v1", "scoped")):
            fam = f"{family}-models"
            self.add(Case(fam, "sanity", "list models with the valid key", "GET", f"{base}/models",
                          bearer(ctx.key), expect=frozenset({200})))
            for name, expect in [
                ("chat-small", {200}), ("no-such-model", {404}), ("a" * 5000, {404, 414}),
                ("%00", {400, 404}), ("chat-small%00", {400, 404}), ("%FF%FE", {400, 404}),
                ("%0d%0aX-Injected:%20yes", {400, 404}), ("..%2F..%2Fadmin%2Fv1%2Ftenants", {400, 404}),
                ("chat-small%20", {400, 404}), ("%E2%80%AE", {400, 404}), ("chat-small?x=%00", {200}),
            ]:
                self.add(Case(fam, "bad_path", f"model id {short(name, 40)!r}", "GET", f"{base}/models/{name}",
                              bearer(ctx.key), expect=frozenset(expect)))
            for description, headers, expect in self.rng.sample(self.bad_inference_auth(), 6):
                path = f"{base}/models" if self.rng.random() < 0.5 else f"{base}/models/chat-small"
                self.add(Case(fam, "bad_auth", description, "GET", path, headers, expect=expect))

    # MARK: admin

    def admin_case(self, family: str, kind: str, description: str, method: str, path: str, body: Optional[bytes] = None,
                   *, expect=None, headers: Optional[list] = None, token: Optional[str] = None) -> None:
        """An admin route case, as the admin token (or `token`) unless `headers` are given."""
        auth = bearer(token or self.ctx.admin_token) if headers is None else headers
        self.add(Case(family, kind, description, method, path, auth + (JSON_HEADERS if body is not None else []),
                      body, expect=expect))

    def admin_bodies(self) -> list:
        """(family, method, path, base body, field types, required fields, numeric fields, name fields)
        Tenant keys are created by an org admin (`body_token`), the rest by the admin token."""
        ctx = self.ctx
        return [
            ("admin-tenants", "POST", "/admin/v1/tenants", {"name": "hostile-tenant", "tier": "standard"},
             {("name",): "string", ("tier",): "string"}, {("name",), ("tier",)}, [], [("name",)]),
            ("admin-keys", "POST", f"/admin/v1/tenants/{ctx.victim_tenant_id}/keys",
             {"name": "hostile-key", "expires_at": "2030-01-01T00:00:00Z"},
             {("name",): "string", ("expires_at",): "string"}, {("name",)}, [], [("name",)]),
            ("admin-limits", "PUT", f"/admin/v1/tenants/{ctx.victim_tenant_id}/limits",
             {"requests_per_minute": 100, "tokens_per_minute": 100000, "concurrent_requests": 10},
             {("requests_per_minute",): "integer", ("tokens_per_minute",): "integer", ("concurrent_requests",): "integer"},
             set(), ["requests_per_minute", "tokens_per_minute", "concurrent_requests"], []),
            ("admin-provider-keys", "POST", "/admin/v1/provider-keys",
             {"provider": "openai", "key": "sk-hostile-provider-key-0001", "label": "hostile", "weight": 1,
              "requests_per_minute": 10, "tokens_per_minute": 1000, "tiers": ["standard"], "tenants": [ctx.victim_tenant_id]},
             {("provider",): "string", ("key",): "string", ("label",): "string", ("weight",): "integer",
              ("requests_per_minute",): "integer", ("tokens_per_minute",): "integer", ("tiers",): "array",
              ("tiers", 0): "string", ("tenants",): "array", ("tenants", 0): "string"},
             {("provider",), ("key",)}, ["weight", "requests_per_minute", "tokens_per_minute"], [("label",)]),
        ]

    def body_token(self, family: str) -> str:
        """Who sends an admin family's body cases: a principal that may take the route's
        action, so the body itself is what is judged."""
        return self.ctx.org_admin_token if family == "admin-keys" else self.ctx.admin_token

    def build_admin(self) -> None:
        for family, method, path, base, fields, required, numeric, names in self.admin_bodies():
            self.admin_body_cases(self.rng, family, method, path, base, fields, required, numeric, names,
                                  token=self.body_token(family))
        ctx = self.ctx
        # The system admin manages tenants but makes no tenant keys: a valid body is refused
        # before it is read, whatever it holds.
        for description, body in [("a valid key body", render({"name": self.unique("sysadmin-key")})),
                                  ("a body cut short", b'{"name": "x'),
                                  ("a body over the admin limit", self.padded_admin({"name": "x"}, ADMIN_MAX_BODY_BYTES + 1))]:
            self.admin_case("admin-keys", "bad_auth", f"the admin token creating a tenant key: {description}", "POST",
                            f"/admin/v1/tenants/{ctx.victim_tenant_id}/keys", body, expect=frozenset({403, 413}
                            if len(body) > ADMIN_MAX_BODY_BYTES else {403}))
        # An org admin creating a key in another tenant: it does not exist for them.
        self.admin_case("admin-keys", "bad_auth", "an org admin creating a key in another tenant", "POST",
                        f"/admin/v1/tenants/{ctx.tenant_id}/keys", render({"name": "elsewhere"}),
                        expect=frozenset({404}), token=ctx.org_admin_token)
        self.build_admin_reads()

    def admin_body_cases(self, rng: random.Random, family: str, method: str, path: str, base: dict, fields: dict,
                         required: set, numeric: list, names: list, *, not_json_expect: Optional[dict] = None,
                         token: Optional[str] = None, body_limit: int = ADMIN_MAX_BODY_BYTES,
                         auth_cases: bool = True) -> None:
        """The body cases of one admin route that takes a JSON object, sent as `token` (the
        admin token by default). `not_json_expect` overrides the expected statuses of named
        `not_json_bodies` shapes (a route whose body may be JSON null, say); `body_limit` is
        the route's body limit; `auth_cases` is False for a route that takes no credentials."""
        def admin_case(*args, **options) -> None:
            self.admin_case(*args, token=token, **options)

        for field_path, expected in fields.items():
            wrong = [v for v in WRONG_VALUES if not type_matches(expected, v[2])]
            for label, value, _ in rng.sample(wrong, min(len(wrong), 6)):
                body = set_path(base, field_path, value)
                optional_null = value is None and field_path not in required and len(field_path) == 1
                admin_case(family, "mistyped", f"{path_name(field_path)} = {label} (wants {expected})",
                                method, path, render(body), expect=None if optional_null else frozenset({400}))
        for name in numeric:
            for text in NUMERIC_EXTREMES:
                body = dict(base)
                body[name] = "__NUM__"
                # 1E2 and 1.0 are whole numbers in range: a decoder may take them.
                expect = None if text in ("1E2", "1.0") else frozenset({400})
                admin_case(family, "numeric_extreme", f"{name} = {text}", method, path,
                                render(body, {"__NUM__": text.encode()}), expect=expect)
        valid = render(base)
        cuts = sorted(set([1, len(valid) - 1] + rng.sample(range(2, len(valid) - 1), 6)))
        for cut in cuts:
            admin_case(family, "truncated_json", f"body cut at byte {cut} of {len(valid)}", method, path,
                            valid[:cut], expect=frozenset({400}))
        for description, body, expect in self.deep_bodies(base, rng):
            # Admin bodies are fully decoded: a deep but valid document in an unknown
            # field may be skipped (any 2xx/4xx); unclosed ones are 400.
            if expect == FOUR_XX or expect is None:
                expect = None
            if len(body) > body_limit:
                expect = frozenset({413})
            admin_case(family, "deep_nesting", description, method, path, body, expect=expect)
        for field_path in [p for p, t in fields.items() if "string" in t.split("|") and len(p) == 1]:
            for label, raw, how in rng.sample(BAD_STRING_BYTES, 4):
                body = set_path(base, field_path, "__BAD__")
                original = json.dumps(base[field_path[0]])[1:-1].encode()
                raw_value = b'"' + original[:3] + raw + original[3:] + b'"'
                is_name = field_path in names
                if how == "raw":
                    expect = frozenset({400})
                elif is_name and label.startswith(("escaped NUL", "lone", "reversed")):
                    expect = frozenset({400})
                else:
                    expect = None
                admin_case(family, "bad_bytes", f"{label} inside {path_name(field_path)}", method, path,
                                render(body, {"__BAD__": raw_value}), expect=expect)
        for label, raw, how in rng.sample(BAD_STRING_BYTES, 3):
            body = dict(base)
            body["__KEY__"] = 1
            admin_case(family, "bad_bytes", f"{label} inside a key", method, path,
                            render(body, {"__KEY__": b'"ext' + raw + b'ra"'}),
                            expect=frozenset({400}) if how == "raw" else None)
        for field_path in names:
            for label, name, is_control in CONTROL_NAMES:
                body = set_path(base, field_path, f"hostile {name} {self.unique('n')}")
                admin_case(family, "control_chars", f"{path_name(field_path)} with {label}", method, path,
                                render(body), expect=frozenset({400}) if is_control else None)
            for description, value in [("whitespace only", "   \t "), ("201 characters", "x" * 201),
                                       ("empty", "")]:
                body = set_path(base, field_path, value)
                # An empty provider-key label takes the default label, by design.
                defaulted = field_path == ("label",) and description != "201 characters"
                admin_case(family, "mistyped", f"{path_name(field_path)} {description}", method, path,
                                render(body), expect=None if defaulted else frozenset({400}))
        for description, body, expect in self.not_json_bodies(base, rng):
            expect = (not_json_expect or {}).get(description, expect)
            admin_case(family, "not_json", description, method, path, body, expect=expect)
        for size in (body_limit + 1, 200_000):
            admin_case(family, "oversized_body", f"{size}-byte body over the {'admin' if body_limit == ADMIN_MAX_BODY_BYTES else 'route'} limit", method, path,
                            self.padded_admin(base, size), expect=frozenset({413}))
        if not auth_cases:
            return
        for description, headers, expect in rng.sample(self.bad_admin_auth(), 6):
            admin_case(family, "bad_auth", description, method, path, render(base), headers=headers,
                            expect=expect)

    def padded_admin(self, base: dict, size: int) -> bytes:
        text = render(dict(base, padding=""))
        return render(dict(base, padding="p" * (size - len(text))))

    def bad_admin_auth(self) -> list:
        ctx = self.ctx
        refused = frozenset({401, 403})
        return [
            ("no Authorization header", [], refused),
            ("Bearer with no token", [("authorization", "Bearer")], refused),
            ("Bearer garbage", [("authorization", "Bearer garbage")], refused),
            ("admin token twice", bearer(ctx.admin_token + " " + ctx.admin_token), refused),
            ("admin token one character short", bearer(ctx.admin_token[:-1]), refused),
            ("10 KB token", bearer("t" * 10_000), refused),
            ("a tenant key", bearer(ctx.key), refused),
            ("Basic auth", [("authorization", "Basic YWRtaW46YWRtaW4=")], refused),
            ("non-ASCII token", [("authorization", "Bearer tøkén€".encode())], refused),
            ("Latin-1 bytes", [("authorization", b"Bearer \xff\xfe")], refused),
            ("the token in X-Api-Key instead", [("x-api-key", ctx.admin_token)], refused),
        ]

    # Path ids that name nothing: (description, path segment, acceptable statuses).
    BAD_IDS = [
        ("a nonexistent id", "ten_nope", {404}), ("an id of 5,000 characters", "t" * 5000, {404, 414}),
        ("%00", "%00", {400, 404}), ("%FF (invalid UTF-8)", "%FF", {400, 404}),
        ("%0A%0D control characters", "%0A%0D", {400, 404}), ("..", "..", {400, 404}),
        ("%2F inside", "a%2Fb", {400, 404}), ("emoji", "%F0%9F%9A%80", {400, 404}),
        ("SQL quote", "'%20OR%20'1'='1", {400, 404}), ("percent sign", "%25", {400, 404}),
    ]

    def build_admin_reads(self) -> None:
        rng, ctx = self.rng, self.ctx
        for description, value, expect in self.BAD_IDS:
            self.admin_case("admin-tenants", "bad_path", f"tenant id {description}", "GET",
                            f"/admin/v1/tenants/{value}", expect=frozenset(expect))
            self.admin_case("admin-keys", "bad_path", f"keys of tenant id {description}", "GET",
                            f"/admin/v1/tenants/{value}/keys", expect=frozenset(expect))
            self.admin_case("admin-keys", "bad_path", f"revoke key id {description}", "DELETE",
                            f"/admin/v1/keys/{value}", expect=frozenset(expect))
            self.admin_case("admin-limits", "bad_path", f"limits of tenant id {description}", "PUT",
                            f"/admin/v1/tenants/{value}/limits", render({"requests_per_minute": 5}),
                            expect=frozenset(expect))
            self.admin_case("admin-provider-keys", "bad_path", f"provider key id {description}", "GET",
                            f"/admin/v1/provider-keys/{value}", expect=frozenset(expect))
            action = rng.choice(["drain", "retire", "enable"])
            self.admin_case("admin-provider-keys", "bad_path", f"{action} provider key id {description}", "POST",
                            f"/admin/v1/provider-keys/{value}/{action}", expect=frozenset(expect))
        # The real routes with real ids, so they are exercised too.
        self.admin_case("admin-tenants", "sanity", "list tenants", "GET", "/admin/v1/tenants", expect=frozenset({200}))
        self.admin_case("admin-tenants", "sanity", "show the victim tenant", "GET",
                        f"/admin/v1/tenants/{ctx.victim_tenant_id}", expect=frozenset({200}))
        self.admin_case("admin-keys", "sanity", "list the victim's keys", "GET",
                        f"/admin/v1/tenants/{ctx.victim_tenant_id}/keys", expect=frozenset({200}))
        self.admin_case("admin-keys", "sanity", "revoke the victim's key (again on the second pass)", "DELETE",
                        f"/admin/v1/keys/{ctx.victim_key_id}", expect=frozenset({200}))
        self.admin_case("admin-keys", "bad_path", "POST /admin/v1/keys/{id}/revoke (no such route)", "POST",
                        f"/admin/v1/keys/{ctx.victim_key_id}/revoke", expect=frozenset({404, 405}))
        self.admin_case("admin-provider-keys", "sanity", "drain the setup key", "POST",
                        f"/admin/v1/provider-keys/{ctx.provider_key_id}/drain", expect=frozenset({200}))
        self.admin_case("admin-provider-keys", "sanity", "enable the setup key", "POST",
                        f"/admin/v1/provider-keys/{ctx.provider_key_id}/enable", expect=frozenset({200}))
        self.admin_case("admin-provider-keys", "sanity", "retire a key (409 once retired)", "POST",
                        f"/admin/v1/provider-keys/{ctx.retire_key_id}/retire", expect=frozenset({200, 409}))
        self.admin_case("admin-provider-keys", "sanity", "show the setup key", "GET",
                        f"/admin/v1/provider-keys/{ctx.provider_key_id}", expect=frozenset({200}))
        self.admin_case("admin-provider-keys", "bad_path", "enable with a body of garbage", "POST",
                        f"/admin/v1/provider-keys/{ctx.provider_key_id}/enable", b"\xff\x00garbage{{{")
        # Query strings.
        usage_queries = [
            ("", {200}), ("group_by=model", {200}), ("group_by=nope", {400}), ("group_by=", {400}),
            ("group_by=%00", {400}), ("group_by=model%0a", {400}), ("group_by=" + "m" * 5000, {400, 414}),
            ("from=2026-13-45", {400}), ("from=99999-01-01", {200, 400}), ("from=-0001-01-01", {400}),
            ("from=1e308", {400}), ("from=", {400}), ("from=%FF", {400}), ("to=2026-11-01T25:00:00Z", {400}),
            ("from=2026-11-02&to=2026-11-01", {400}), ("from=2026-11-01&to=2026-11-01", {400}),
            ("from=2026-11-01T00:00:00.123456789Z", {200, 400}), ("from=2026-11-01T00:00:00%2B05:00", {200}),
            ("tenant=%00", {200}), ("tenant=" + "t" * 5000, {200, 414}), (f"tenant={ctx.tenant_id}", {200}),
            ("tenant=%27%3B%20DROP%20TABLE%20tenants%3B--", {200}), ("group_by=model&group_by=day", {200, 400}),
            ("unknown=1", {200}), ("%zz=%zz", {200, 400}), ("&&&==&", {200, 400}), ("group_by=tenant&from=0", {400}),
            ("from=2026-11-01T00:00:00", {200, 400}), ("to=9999-12-31T23:59:59Z", {200}),
            ("from=0000-01-01", {200, 400}),
        ]
        for query, expect in usage_queries:
            self.admin_case("admin-usage", "bad_query", f"?{short(query, 50)}", "GET", f"/admin/v1/usage?{query}",
                            expect=frozenset(expect))
        for description, headers, expect in self.bad_admin_auth():
            self.admin_case("admin-usage", "bad_auth", description, "GET", "/admin/v1/usage", headers=headers,
                            expect=expect)
        # The cost analyst's reports and reconciliation: bad parameters are 400s, never 500s.
        allocation_queries = [
            ("", {200}), ("group_by=tenant,model", {200}), ("group_by=tenant,key,user,model,deployment,provider,"
             "provider_key,engine_pool,status,day,hour", {200}), ("group_by=nope", {400}), ("group_by=", {200, 400}),
            ("group_by=tenant,tenant", {200, 400}), ("group_by=%00", {400}), ("group_by=" + "tenant," * 2000, {400, 414}),
            ("format=csv", {200}), ("format=xml", {400}), ("format=", {400}), ("format=CSV%00", {400}),
            ("from=2026-11-01T00:30:00Z&to=2026-11-02", {400}), ("from=2026-11-02&to=2026-11-01", {400}),
            ("from=2026-13-45", {400}), ("to=1e308", {400}), ("from=0000-01-01&to=9999-12-31", {200, 400}),
            ("cursor=garbage", {400}), ("cursor=%00", {400}), ("cursor=" + "A" * 5000, {400, 414}),
            ("cursor=WyJncm91cCJd", {400}), ("cursor=W10", {400}), ("cursor=bnVsbA", {400}),
            ("limit=0", {400}), ("limit=-1", {400}), ("limit=10001", {400}), ("limit=abc", {400}), ("limit=1", {200}),
            ("limit=99999999999999999999999", {400}), ("include_gpu=true", {200}), ("include_gpu=maybe", {400}),
            ("include_gpu=true&format=csv&group_by=model", {200}), ("tenant=%27%3B--", {200, 404}),
            (f"tenant={ctx.tenant_id}&group_by=user", {200}),
        ]
        for query, expect in allocation_queries:
            self.admin_case("admin-reports", "bad_query", f"allocation ?{short(query, 50)}", "GET",
                            f"/admin/v1/reports/allocation?{query}", expect=frozenset(expect))
        gpu_queries = [
            ("", {400}), ("pool=", {400}), ("pool=nope", {404}), ("pool=%00", {400, 404}), ("pool=" + "p" * 5000, {404, 414}),
            ("pool=%27%20OR%201%3D1", {404}), ("pool=nope&from=2026-13-01", {400, 404}),
        ]
        for query, expect in gpu_queries:
            self.admin_case("admin-reports", "bad_query", f"gpu ?{short(query, 50)}", "GET",
                            f"/admin/v1/reports/gpu?{query}", expect=frozenset(expect))
        for description, value, expect in self.BAD_IDS:
            # `…/usage/events/..` is `…/usage`, a real route.
            self.admin_case("admin-reports", "bad_path", f"usage event id {description}", "GET",
                            f"/admin/v1/usage/events/{value}", expect=frozenset(expect | ({200} if value == ".." else set())))
        for description, headers, expect in rng.sample(self.bad_admin_auth(), 4):
            self.admin_case("admin-reports", "bad_auth", description, "GET", "/admin/v1/reports/allocation",
                            headers=headers, expect=expect)
        for query in ["provider=openai", "provider=%00", "provider=" + "p" * 5000, "include_retired=true",
                      "include_retired=garbage", "include_retired=%FF", "provider=openai&provider=azure",
                      "include_retired=1&provider="]:
            self.admin_case("admin-provider-keys", "bad_query", f"?{short(query, 50)}", "GET",
                            f"/admin/v1/provider-keys?{query}", expect=frozenset({200, 414}))
        for description, headers, expect in rng.sample(self.bad_admin_auth(), 5):
            path = rng.choice(["/admin/v1/tenants", f"/admin/v1/tenants/{ctx.victim_tenant_id}",
                               "/admin/v1/provider-keys", f"/admin/v1/tenants/{ctx.victim_tenant_id}/keys"])
            family = "admin-provider-keys" if "provider" in path else ("admin-keys" if "keys" in path else "admin-tenants")
            self.admin_case(family, "bad_auth", description, "GET", path, headers=headers, expect=expect)
        for description, headers, expect in rng.sample(self.bad_admin_auth(), 4):
            self.admin_case("admin-keys", "bad_auth", description, "DELETE", f"/admin/v1/keys/{ctx.victim_key_id}",
                            headers=headers, expect=expect)

    # MARK: methods, health, metrics, paths

    def routes(self) -> list:
        """(family, path, allowed methods, auth headers, body for methods that take one)"""
        ctx = self.ctx
        admin = bearer(ctx.admin_token)
        tenant = bearer(ctx.key)
        chat = render(self.INFERENCE["chat/completions"]["base"])
        routes = []
        for base, fam in (("/v1", "inference"), (f"/tenants/{ctx.tenant_id}/v1", "scoped")):
            routes += [
                (f"{fam}-chat", f"{base}/chat/completions", {"POST"}, tenant, chat),
                (f"{fam}-completions", f"{base}/completions", {"POST"}, tenant, chat),
                (f"{fam}-embeddings", f"{base}/embeddings", {"POST"}, tenant, chat),
                (f"{fam}-models", f"{base}/models", {"GET"}, tenant, b"{}"),
                (f"{fam}-models", f"{base}/models/chat-small", {"GET"}, tenant, b"{}"),
            ]
        routes += [
            ("admin-tenants", "/admin/v1/tenants", {"GET", "POST"}, admin, b"{}"),
            ("admin-tenants", f"/admin/v1/tenants/{ctx.victim_tenant_id}", {"GET"}, admin, b"{}"),
            ("admin-limits", f"/admin/v1/tenants/{ctx.victim_tenant_id}/limits", {"PUT"}, admin, b"{}"),
            ("admin-keys", f"/admin/v1/tenants/{ctx.victim_tenant_id}/keys", {"GET", "POST"}, admin, b"{}"),
            ("admin-keys", "/admin/v1/keys/key_does_not_exist", {"DELETE"}, admin, b"{}"),
            ("admin-usage", "/admin/v1/usage", {"GET"}, admin, b"{}"),
            ("admin-reports", "/admin/v1/reports/allocation", {"GET"}, admin, b"{}"),
            ("admin-provider-keys", "/admin/v1/provider-keys", {"GET", "POST"}, admin, b"{}"),
            ("admin-provider-keys", f"/admin/v1/provider-keys/{ctx.provider_key_id}", {"GET"}, admin, b"{}"),
            ("admin-provider-keys", "/admin/v1/provider-keys/pk_nope/drain", {"POST"}, admin, b"{}"),
            ("admin-provider-keys", "/admin/v1/provider-keys/pk_nope/retire", {"POST"}, admin, b"{}"),
            ("admin-provider-keys", "/admin/v1/provider-keys/pk_nope/enable", {"POST"}, admin, b"{}"),
            ("health", "/health", {"GET"}, [], b"{}"),
            ("metrics", "/metrics", {"GET"}, [], b"{}"),
        ]
        return routes

    def build_methods(self, routes: Optional[list] = None, *, head_also: frozenset = frozenset()) -> None:
        """Wrong methods on each route; `head_also` adds what HEAD may answer besides GET's
        200 (a 404 where the resource may not exist at the time)."""
        for family, path, allowed, auth, body in self.routes() if routes is None else routes:
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO"]:
                if method in allowed:
                    continue
                allowed_5xx = {}
                if method == "HEAD" and "GET" in allowed:
                    expect = {200, 405} | head_also  # RFC 9110 §9.3.2: HEAD is GET without the body
                elif method == "OPTIONS":
                    expect = {200, 204, 405}
                elif method == "FOO":
                    expect, allowed_5xx = {400, 405, 501}, UNKNOWN_METHOD_501
                else:
                    expect = {405}
                sends_body = method in ("POST", "PUT", "PATCH")
                self.add(Case(family, "wrong_method", f"{method} on a {'/'.join(sorted(allowed))} route", method, path,
                              auth + (JSON_HEADERS if sends_body else []), body if sends_body else None,
                              expect=frozenset(expect), allowed_5xx=allowed_5xx))

    def build_health_metrics(self) -> None:
        for family, path in (("health", "/health"), ("metrics", "/metrics")):
            variants = [
                ("plain GET", path, [], None, {200}),
                ("query with NUL and invalid UTF-8", path + "?a=%00&b=%FF&c", [], None, {200}),
                ("16 KB query string", path + "?q=" + "x" * 16_000, [], None, {200, 414}),
                ("GET with a 1 KB body", path, JSON_HEADERS, b"{" * 1000, {200, 400}),
                ("GET with a body over the limit", path, JSON_HEADERS, b"x" * 100_000, {200, 400, 413}),
                ("garbage Accept and Accept-Encoding", path, [("accept", "\x7fnonsense/*;q=abc"), ("accept-encoding", "br;q=2, zstd, *;q=-1")], None, {200, 400, 406}),
                ("garbage Authorization", path, [("authorization", "Bearer \x7f")], None, {200, 400, 401}),
                ("trailing slash", path + "/", [], None, {200, 404}),
                ("double slash", "/" + path, [], None, {200, 400, 404}),
                ("uppercase path", path.upper(), [], None, {404}),
                ("percent-encoded path", path.replace("h", "%68").replace("m", "%6d"), [], None, {200, 400, 404}),
                ("Range header", path, [("range", "bytes=999999999-1")], None, {200, 206, 416}),
                ("Content-Encoding gzip on a GET without body", path, [("content-encoding", "gzip")], None, {200, 400, 415}),
            ]
            for description, p, headers, body, expect in variants:
                self.add(Case(family, "bad_query" if "?" in p else "bad_headers", description, "GET", p, headers, body,
                              expect=frozenset(expect)))
        ctx = self.ctx
        unknown = [
            ("inference-chat", "/v1/chat/completions/extra", {401, 404, 405}),
            ("inference-chat", "/v1/chat", {401, 404, 405}),
            ("inference-models", "/v1/models/", {200, 401, 404}),
            ("inference-models", "/v1/", {401, 404}),
            ("inference-models", "/v2/models", {404}),
            ("scoped-models", "/tenants//v1/models", {400, 401, 404}),
            ("scoped-models", "/tenants/%00/v1/models", {400, 401, 404}),
            ("admin-tenants", "/admin/v1/tenants/a/b/c", {401, 404, 405}),
            ("admin-tenants", "/admin/v2/tenants", {404}),
            ("admin-tenants", "/admin/v1/", {401, 404}),
            ("admin-tenants", "/admin/v1/%2e%2e/%2e%2e/health", {400, 401, 404}),
            ("admin-usage", "/admin/v1/usage/extra", {401, 404, 405}),
            ("health", "/" + "a/" * 2000, {404, 414}),
            ("health", "/nope", {404}),
        ]
        for family, path, expect in unknown:
            self.add(Case(family, "bad_path", f"unknown path {short(path, 40)}", "GET", path, bearer(ctx.admin_token),
                          expect=frozenset(expect)))
            self.add(Case(family, "bad_path", f"unknown path {short(path, 40)} (no auth)", "POST", path,
                          JSON_HEADERS, b"{}", expect=frozenset(expect | {401, 405})))

    # MARK: raw HTTP shapes

    def raw_targets(self) -> dict:
        ctx = self.ctx
        chat = render(self.INFERENCE["chat/completions"]["base"])
        embed = render(self.INFERENCE["embeddings"]["base"])
        return {
            "chat": ("inference-chat", "POST", "/v1/chat/completions", f"Authorization: Bearer {ctx.key}", chat),
            "scoped-embed": ("scoped-embeddings", "POST", f"/tenants/{ctx.tenant_id}/v1/embeddings",
                             f"Authorization: Bearer {ctx.key}", embed),
            "tenants": ("admin-tenants", "POST", "/admin/v1/tenants", f"Authorization: Bearer {ctx.admin_token}",
                        None),  # body made per case: a fresh name
            "limits": ("admin-limits", "PUT", f"/admin/v1/tenants/{ctx.victim_tenant_id}/limits",
                       f"Authorization: Bearer {ctx.admin_token}", render({"requests_per_minute": 100})),
            "provider-keys": ("admin-provider-keys", "POST", "/admin/v1/provider-keys",
                              f"Authorization: Bearer {ctx.admin_token}",
                              render({"provider": "no-such-provider", "key": "sk-raw"})),
            "models": ("inference-models", "GET", "/v1/models", f"Authorization: Bearer {ctx.key}", None),
            "health": ("health", "GET", "/health", "", None),
            "metrics": ("metrics", "GET", "/metrics", "", None),
            "usage": ("admin-usage", "GET", "/admin/v1/usage", f"Authorization: Bearer {ctx.admin_token}", None),
            "pinning": ("admin-pinning", "PUT", f"/admin/v1/tenants/{ctx.victim_tenant_id}/pinning",
                        f"Authorization: Bearer {ctx.admin_token}", render({"chat-small": "local-llama-8b"})),
            "pools": ("admin-pools", "GET", "/admin/v1/pools", f"Authorization: Bearer {ctx.admin_token}", None),
        }

    def target_body(self, name: str, body: Optional[bytes]) -> bytes:
        if body is not None:
            return body
        return render({"name": self.unique("raw-tenant"), "tier": "standard"})

    @staticmethod
    def head(method: str, path: str, auth: str, extra: list, version: str = "HTTP/1.1", host: bool = True) -> bytes:
        lines = [f"{method} {path} {version}"]
        if host:
            lines.append("Host: 127.0.0.1")
        if auth:
            lines.append(auth)
        lines += extra
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def raw_case(self, target: str, kind: str, description: str, raw: bytes, **kwargs) -> None:
        family, method, path, _, _ = self.raw_targets()[target]
        self.add(Case(family, kind, description, method, path, raw=raw, **kwargs))

    def build_raw_chunked(self) -> None:
        rng = self.rng
        body_targets = ["chat", "scoped-embed", "tenants", "limits", "provider-keys"]

        def chunked(body: bytes) -> bytes:
            return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"

        te = ["Content-Type: application/json", "Transfer-Encoding: chunked"]
        shapes: list[tuple] = [
            # (description, extra headers, body(body) -> bytes, case options)
            ("chunk size 'zz'", te, lambda b: b"zz\r\n" + b + b"\r\n0\r\n\r\n", dict(expect={400}, must_close=True)),
            ("chunk size '-5'", te, lambda b: b"-5\r\n" + b + b"\r\n0\r\n\r\n", dict(expect={400}, must_close=True)),
            ("chunk size 'fffffffffffffffffff' (more than 64 bits)", te,
             lambda b: b"fffffffffffffffffff\r\n" + b + b"\r\n0\r\n\r\n", dict(expect={400, 413}, must_close=True)),
            ("chunk size 7fffffffffffffff (far over --max-body-bytes), 10 bytes, then EOF", te,
             lambda b: b"7fffffffffffffff\r\n" + b[:10],
             dict(expect={400, 413}, halfclose_after=1.0, close_ok="the body is incomplete when the client half-closes")),
            ("one chunk of 0x10001 bytes (over --max-body-bytes alone), all sent", te,
             lambda b: b"10001\r\n" + b + b" " * (0x10001 - len(b)) + b"\r\n0\r\n\r\n", dict(expect={413})),
            ("chunk shorter than its size, then the terminator (a parse error)", te,
             lambda b: b"4\r\nab\r\n0\r\n\r\n", dict(expect={400}, must_close=True)),
            ("chunk shorter than its size; the terminator is swallowed as data, then EOF", te,
             lambda b: f"{len(b) + 40:x}\r\n".encode() + b + b"\r\n0\r\n\r\n",
             dict(expect={400}, halfclose_after=1.0, close_ok="the body is incomplete when the client half-closes")),
            ("chunk longer than its size", te, lambda b: b"2\r\n" + b + b"\r\n0\r\n\r\n",
             dict(expect={400}, must_close=True)),
            ("NUL in a chunk extension", te, lambda b: f"{len(b):x};\x00bad\r\n".encode() + b + b"\r\n0\r\n\r\n",
             dict(expect={400}, must_close=True)),
            ("bare LF inside a chunk extension", te,
             lambda b: f"{len(b):x};a\nb\r\n".encode() + b + b"\r\n0\r\n\r\n", dict(must_close=True)),
            ("chunk extension without a name", te, lambda b: f"{len(b):x};=novalue\r\n".encode() + b + b"\r\n0\r\n\r\n",
             dict()),
            ("unterminated quoted chunk extension", te,
             lambda b: f'{len(b):x};ext="open\r\n'.encode() + b + b"\r\n0\r\n\r\n", dict()),
            ("100 KB chunk extension", te, lambda b: f"{len(b):x};".encode() + b"e" * 100_000 + b"\r\n" + b + b"\r\n0\r\n\r\n",
             dict(expect={400, 413, 431})),
            ("valid chunk extension", te, lambda b: f"{len(b):x};name=value\r\n".encode() + b + b"\r\n0\r\n\r\n", dict()),
            ("missing CRLF after the chunk data", te, lambda b: f"{len(b):x}\r\n".encode() + b + b"0\r\n\r\n",
             dict(expect={400}, must_close=True)),
            ("missing CRLF after the chunk size", te, lambda b: f"{len(b):x}".encode() + b + b"\r\n0\r\n\r\n",
             dict(expect={400}, must_close=True)),
            ("bare LF line endings in the chunked body", te,
             lambda b: f"{len(b):x}\n".encode() + b + b"\n0\n\n", dict(must_close=True)),
            ("no last chunk, then EOF", te, lambda b: f"{len(b):x}\r\n".encode() + b + b"\r\n",
             dict(expect={400}, halfclose_after=1.0, close_ok="the body is incomplete when the client half-closes")),
            ("trailer fields after the last chunk", te,
             lambda b: f"{len(b):x}\r\n".encode() + b + b"\r\n0\r\nX-Trailer: yes\r\n\r\n", dict()),
            ("leading zeros and uppercase hex in the chunk size", te,
             lambda b: f"000{len(b):X}\r\n".encode() + b + b"\r\n0\r\n\r\n", dict()),
            ("one-byte chunks", te, lambda b: b"".join(b"1\r\n" + bytes([c]) + b"\r\n" for c in b) + b"0\r\n\r\n", dict()),
            ("body over --max-body-bytes in 4 KB chunks", te,
             lambda b: b"".join(b"1000\r\n" + b"x" * 4096 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n",
             dict(expect={413})),
            ("Transfer-Encoding: xchunked", ["Content-Type: application/json", "Transfer-Encoding: xchunked"],
             chunked, dict(expect={400}, must_close=True)),  # RFC 9112 §6.3: chunked not final -> 400 and close
            ("Transfer-Encoding: chunked, identity", ["Content-Type: application/json", "Transfer-Encoding: chunked, identity"],
             chunked, dict(expect={400}, must_close=True)),
            ("Transfer-Encoding: gzip, chunked (gzip not understood)",
             ["Content-Type: application/json", "Transfer-Encoding: gzip, chunked"], chunked,
             dict(allowed_5xx=UNKNOWN_CODING_501)),
            ("Transfer-Encoding: chunked twice", te + ["Transfer-Encoding: chunked"], chunked, dict()),
            ("space before the colon of Transfer-Encoding",
             ["Content-Type: application/json", "Transfer-Encoding : chunked"], chunked,
             dict(expect={400}, must_close=True)),  # RFC 9112 §5.1: MUST reject with 400
            ("Content-Length and Transfer-Encoding (CL shorter)", te + ["Content-Length: 4"], chunked,
             dict(must_close=True)),  # RFC 9112 §6.3: may reject; MUST close after responding
            ("Content-Length and Transfer-Encoding (CL longer)", te + ["Content-Length: 400"], chunked,
             dict(must_close=True)),
            ("Transfer-Encoding: chunked in an HTTP/1.0 request", te, chunked, dict(must_close=True, version="HTTP/1.0")),
        ]
        cl_shapes = [
            ("duplicate Content-Length with different values", lambda n: [f"Content-Length: {n}", f"Content-Length: {n + 5}"],
             dict(expect={400}, must_close=True)),
            ("Content-Length list with different values", lambda n: [f"Content-Length: {n}, {n + 5}"],
             dict(expect={400}, must_close=True)),
            ("duplicate Content-Length with equal values", lambda n: [f"Content-Length: {n}", f"Content-Length: {n}"], dict()),
            ("Content-Length '+N'", lambda n: [f"Content-Length: +{n}"], dict(expect={400}, must_close=True)),
            ("Content-Length in hex", lambda n: [f"Content-Length: 0x{n:x}"], dict(expect={400}, must_close=True)),
            ("Content-Length -1", lambda n: ["Content-Length: -1"], dict(expect={400}, must_close=True)),
            ("Content-Length 1e3", lambda n: ["Content-Length: 1e3"], dict(expect={400}, must_close=True)),
            ("Content-Length 99999999999999999999999", lambda n: ["Content-Length: 99999999999999999999999"],
             dict(expect={400, 413}, must_close=True)),
            ("Content-Length longer than the body, then EOF", lambda n: [f"Content-Length: {n + 50}"],
             dict(halfclose_after=1.0, close_ok="the body is incomplete when the client half-closes", expect={400})),
            ("Content-Length over --max-body-bytes, body sent", lambda n: [f"Content-Length: {n}"], dict(expect={413}, big=True)),
        ]
        for description, extra, make, shape_options in shapes:
            for target in rng.sample(body_targets, 2):
                family, method, path, auth, body = self.raw_targets()[target]
                options = dict(shape_options)
                version = options.pop("version", "HTTP/1.1")
                payload = make(self.target_body(target, body))
                must_close = options.get("must_close", False)
                connection = [] if must_close or options.get("halfclose_after") else ["Connection: close"]
                raw = self.head(method, path, auth, extra + connection, version) + payload
                if must_close:
                    raw += SMUGGLED
                expect = options.pop("expect", None)
                self.raw_case(target, "bad_chunked", description, raw,
                              expect=frozenset(expect) if expect else None, **options)
        for description, make_headers, shape_options in cl_shapes:
            for target in rng.sample(body_targets, 2):
                family, method, path, auth, body = self.raw_targets()[target]
                options = dict(shape_options)
                payload = self.target_body(target, body)
                if options.pop("big", False):
                    payload = payload[:-1] + b"," + json.dumps({"padding": "p" * 70_000}).encode()[1:]
                must_close = options.get("must_close", False)
                connection = [] if must_close or options.get("halfclose_after") else ["Connection: close"]
                raw = self.head(method, path, auth, ["Content-Type: application/json"] + make_headers(len(payload)) + connection)
                raw += payload
                if must_close:
                    raw += SMUGGLED
                expect = options.pop("expect", None)
                self.raw_case(target, "bad_framing", description, raw,
                              expect=frozenset(expect) if expect else None, **options)

    def build_raw_request_lines(self) -> None:
        ctx = self.ctx
        close = "Connection: close"
        lines = [
            ("health", "garbage method with a control byte", b"G@RB\x01GE /health HTTP/1.1\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("health", "unknown method FOO", b"FOO /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             dict(expect={400, 405, 501}, allowed_5xx=UNKNOWN_METHOD_501)),
            ("inference-chat", "lowercase method 'post'",
             f"post /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.key}\r\nContent-Length: 2\r\n{close}\r\n\r\n{{}}".encode(),
             dict(expect={400, 405, 501}, allowed_5xx=UNKNOWN_METHOD_501)),
            ("health", "CONNECT to an authority", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
             dict(expect={400, 405, 501}, allowed_5xx=UNKNOWN_METHOD_501)),
            ("inference-models", "100 KB URI", b"GET /v1/models/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
             dict(expect={400, 414, 431})),
            ("health", "100 KB query string", b"GET /health?" + b"q" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
             dict(expect={400, 414, 431})),
            ("admin-tenants", "1 MB URI", b"GET /admin/v1/tenants/" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
             dict(expect={400, 414, 431})),
            ("health", "HTTP/0.9 request (no version, no headers)", b"GET /health\r\n",
             dict(expect={400}, halfclose_after=1.0,
                  close_ok="an HTTP/0.9 client cannot read a status line; RFC 9112 lets servers drop 0.9")),
            ("health", "missing version with headers", b"GET /health\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("health", "extra token after the version", b"GET /health HTTP/1.1 extra\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("health", "two spaces between method and target", b"GET  /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dict()),
            ("health", "HTTP/9.9", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", dict(expect={400, 505}, allowed_5xx=VERSION_505)),
            ("health", "HTTP/1.1 with bare LF line endings", b"GET /health HTTP/1.1\nHost: x\nConnection: close\n\n", dict()),
            ("health", "lowercase version http/1.1", b"GET /health http/1.1\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("health", "absolute-form target", b"GET http://example.com/health HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
             dict(expect={200, 400, 404})),
            ("health", "asterisk-form with GET", b"GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dict(expect={400, 404})),
            ("health", "OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dict()),
            ("health", "empty lines before the request line", b"\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dict()),
            ("health", "NUL in the target", b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("health", "DEL in the target", b"GET /hea\x7flth HTTP/1.1\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("inference-models", "space inside the target", b"GET /v1/mo dels HTTP/1.1\r\nHost: x\r\n\r\n", dict(expect={400})),
            ("inference-models", "raw invalid UTF-8 in the target",
             f"GET /v1/models/\xff\xfe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.key}\r\n{close}\r\n\r\n".encode("latin-1"),
             dict(expect={400, 404})),
            ("admin-tenants", "dot segments to reach admin without auth", b"GET /v1/../admin/v1/tenants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             dict(expect={400, 401, 404})),
            ("health", "2 KB of random bytes", bytes(self.rng.randrange(256) for _ in range(2048)),
             dict(expect={400}, close_ok="not HTTP at all")),
            ("health", "a TLS ClientHello on the plaintext port",
             bytes.fromhex("16030100a5010000a10303") + bytes(32) + bytes.fromhex("000020c02bc02fc02cc030cca9cca8c013c014009c009d002f0035000a01000058"),
             dict(expect={400}, halfclose_after=1.0, close_ok="a TLS client cannot read an HTTP answer")),
            ("health", "HTTP/2 prior-knowledge preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
             dict(expect={400, 505}, allowed_5xx=VERSION_505, halfclose_after=1.0,
                  close_ok="an HTTP/2 client cannot read an HTTP/1.1 answer")),
            ("health", "10,000 empty lines and no request line", b"\r\n" * 10_000,
             dict(expect={400}, halfclose_after=1.0, close_ok="no request was sent")),
            ("health", "header line without a colon", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad\r\n\r\n", dict(expect={400})),
            ("health", "header name with a space", b"GET /health HTTP/1.1\r\nHost: x\r\nX Bad: v\r\n\r\n", dict(expect={400})),
            ("health", "header name with a NUL", b"GET /health HTTP/1.1\r\nHost: x\r\nX-\x00: v\r\n\r\n", dict(expect={400})),
            ("health", "empty header name", b"GET /health HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", dict(expect={400})),
            ("health", "NUL in a header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n", dict()),
            ("health", "control byte 0x01 in a header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\nConnection: close\r\n\r\n", dict()),
            ("health", "bare CR in a header value", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\nConnection: close\r\n\r\n", dict()),
            ("health", "obs-fold continuation line", b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\nConnection: close\r\n\r\n", dict()),
            ("health", "no Host header", b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", dict()),
            ("health", "two Host headers", b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n", dict()),
            ("health", "Host with garbage", b"GET /health HTTP/1.1\r\nHost: a b\x01c\r\nConnection: close\r\n\r\n", dict()),
            ("health", "HTTP/1.0 without Host", b"GET /health HTTP/1.0\r\n\r\n", dict(expect={200})),
            ("health", "pipelined: two requests in one write",
             b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", dict(expect={200})),
        ]
        for family, description, raw, options in lines:
            options = dict(options)
            expect = options.pop("expect", None)
            header_shapes = {
                "header line without a colon", "header name with a space", "header name with a NUL", "empty header name",
                "NUL in a header value", "control byte 0x01 in a header value", "bare CR in a header value",
                "obs-fold continuation line", "no Host header", "two Host headers", "Host with garbage",
                "HTTP/1.0 without Host",
            }
            kind = "bad_headers" if description in header_shapes else "bad_request_line"
            first_line = raw.split(b"\n", 1)[0].rstrip(b"\r")
            shown = repr(first_line[:60])[2:-1] + (f"...(+{len(first_line) - 60})" if len(first_line) > 60 else "")
            self.add(Case(family, kind, description, "RAW", shown, raw=raw,
                          expect=frozenset(expect) if expect else None, **options))

    def build_raw_headers(self) -> None:
        ctx = self.ctx
        targets = ["health", "models", "chat", "tenants", "metrics", "usage"]
        shapes = [
            ("a 100 KB header value", lambda: ["X-Big: " + "a" * 100_000], {400, 431}),
            ("2,000 headers", lambda: [f"X-H{i}: v" for i in range(2000)], None),
            ("a 100 KB Authorization header", lambda: ["Authorization: Bearer " + "k" * 100_000], {400, 401, 431}),
            ("50 headers of 2 KB", lambda: [f"X-M{i}: " + "m" * 2048 for i in range(50)], None),
            ("a 1 MB header value", lambda: ["X-Huge: " + "h" * 1_000_000], {400, 431}),
            ("a 100 KB header name", lambda: ["X-" + "n" * 100_000 + ": v"], {400, 431}),
            ("an 8 KB header value", lambda: ["X-Medium: " + "m" * 8192], None),
        ]
        for description, make, expect in shapes:
            for target in targets:
                family, method, path, auth, body = self.raw_targets()[target]
                extra = make()
                if any(line.lower().startswith("authorization:") for line in extra):
                    auth = ""
                payload = b""
                if method in ("POST", "PUT"):
                    payload = self.target_body(target, body)
                    extra = extra + ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
                raw = self.head(method, path, auth, extra + ["Connection: close"]) + payload
                self.raw_case(target, "oversized_headers", description, raw, expect=frozenset(expect) if expect else None)
        # Bad auth bytes only a raw client sends.
        for target in ("chat", "models", "usage"):
            family, method, path, _, body = self.raw_targets()[target]
            unauthorized = {401, 403} if target == "usage" else {401}
            for description, auth in [
                ("NUL inside the bearer token", b"Authorization: Bearer sk-sy-\x00abc"),
                ("control byte 0x01 inside the token", b"Authorization: Bearer sk-sy-\x01abc"),
                ("UTF-8 token", "Authorization: Bearer sk-sy-ключ".encode()),
                ("invalid UTF-8 token", b"Authorization: Bearer sk-sy-\xc3\x28\xa0\xa1"),
                ("tab-separated scheme", f"Authorization: Bearer\t{ctx.key}".encode()),
                ("'Bearer ' and nothing after the space", b"Authorization: Bearer "),
                ("the right token with trailing spaces",
                 f"Authorization: Bearer {ctx.admin_token if target == 'usage' else ctx.key}   ".encode()),
            ]:
                payload = self.target_body(target, body) if method in ("POST", "PUT") else b""
                head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + auth + b"\r\n"
                if payload:
                    head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n".encode()
                # A tab is whitespace and trailing whitespace is not part of a field value
                # (RFC 9110 §5.5): either reading may be right.
                lenient = "tab" in description or "trailing" in description
                self.raw_case(target, "bad_auth", description, head + b"\r\n" + payload,
                              expect=None if lenient else frozenset(unauthorized | {400}))

    def build_raw_expect(self) -> None:
        targets = self.raw_targets()
        for target, auth_override, description, expect in [
            ("chat", None, "Expect: 100-continue with a valid request", {200}),
            ("scoped-embed", None, "Expect: 100-continue on the tenant-scoped route", {200}),
            ("tenants", None, "Expect: 100-continue on an admin POST", {201, 409}),
            ("limits", None, "Expect: 100-continue on an admin PUT", {200}),
            ("chat", "", "Expect: 100-continue without credentials", {401, 417}),
            ("chat", "Authorization: Bearer sk-sy-wrong", "Expect: 100-continue with a wrong key", {401, 417}),
            ("tenants", "Authorization: Bearer nope", "Expect: 100-continue with a wrong admin token", {401, 403, 417}),
            ("chat", None, "Expect: 100-Continue (mixed case)", {200}),
        ]:
            family, method, path, auth, body = targets[target]
            payload = self.target_body(target, body)
            value = "100-Continue" if "mixed" in description else "100-continue"
            head = self.head(method, path, auth if auth_override is None else auth_override,
                             ["Content-Type: application/json", f"Content-Length: {len(payload)}", f"Expect: {value}",
                              "Connection: close"])
            self.add(Case(family, "expect_continue", description, method, path, raw=head, expect_body=payload,
                          expect=frozenset(expect)))
        family, method, path, auth, body = targets["chat"]
        big = b'{"model":"chat-small","user":"' + b"p" * 100_000 + b'"}'
        head = self.head(method, path, auth, ["Content-Type: application/json", f"Content-Length: {len(big)}",
                                              "Expect: 100-continue", "Connection: close"])
        self.add(Case(family, "expect_continue", "Expect: 100-continue with Content-Length over --max-body-bytes",
                      method, path, raw=head, expect_body=big, expect=frozenset({413, 417})))
        payload = render(self.INFERENCE["chat/completions"]["base"])
        head = self.head(method, path, auth, ["Content-Type: application/json", "Transfer-Encoding: chunked",
                                              "Expect: 100-continue", "Connection: close"])
        self.add(Case(family, "expect_continue", "Expect: 100-continue with a chunked body", method, path, raw=head,
                      expect_body=f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n", expect=frozenset({200})))
        for target in ("health", "models"):
            family, method, path, auth, _ = targets[target]
            head = self.head(method, path, auth, ["Expect: 100-continue", "Content-Length: 0", "Connection: close"])
            self.add(Case(family, "expect_continue", "Expect: 100-continue on a GET without a body", method, path,
                          raw=head, expect=frozenset({200})))
        family, method, path, auth, body = targets["chat"]
        raw = self.head(method, path, auth, ["Content-Type: application/json", f"Content-Length: {len(payload)}",
                                             "Expect: teapot", "Connection: close"]) + payload
        self.add(Case(family, "expect_continue", "Expect: teapot (an unknown expectation)", method, path, raw=raw,
                      expect=frozenset({200, 417})))

    # MARK: admin pinning and pools

    # PUT /admin/v1/tenants/{id}/pinning and GET /admin/v1/pools came after the rest of the
    # corpus. Their cases are made last, from a random.Random of their own, so that every
    # case before them (its id, its body, its expectation) is what it was.

    # The shipped providers.json's models and their deployments (the hostile deployment
    # serves that file with its URLs changed): chat-small -> local-llama-8b,
    # openai-gpt-4o-mini; chat-large -> openai-gpt-4o, azure-gpt-4o, anthropic-sonnet;
    # chat-fast -> gemini-flash; embed-small -> local-embed.
    PINNING_BASE = {"chat-small": "local-llama-8b", "embed-small": "local-embed"}

    def pinning_pools_routes(self) -> list:
        """routes() for the two later routes: (family, path, allowed methods, auth, body)."""
        admin = bearer(self.ctx.admin_token)
        return [
            ("admin-pinning", f"/admin/v1/tenants/{self.ctx.victim_tenant_id}/pinning", {"PUT"}, admin, b"{}"),
            ("admin-pools", "/admin/v1/pools", {"GET"}, admin, b"{}"),
        ]

    def build_admin_pinning_and_pools(self) -> None:
        rng = random.Random(f"{self.seed}/admin-pinning-pools")
        self.build_admin_pinning(rng)
        self.build_admin_pools(rng)
        self.build_methods(self.pinning_pools_routes())
        self.build_raw_pinning_pools(rng)

    def build_admin_pinning(self, rng: random.Random) -> None:
        """The pinning body is an object of public model -> deployment id (null unpins the
        model), or JSON null (no pins at all). A model that does not exist, or a deployment
        that is not one of the model's, is 400 naming the model as `param`. The corpus pins
        the victim tenant, whose requests the corpus never sends, so that no inference case
        is routed differently."""
        ctx = self.ctx
        family, method = "admin-pinning", "PUT"
        path = f"/admin/v1/tenants/{ctx.victim_tenant_id}/pinning"
        base = self.PINNING_BASE
        # Every string that is not one of the model's deployments is refused, so what the
        # corpus expects of a name (control characters, empty, 201 characters: 400) holds
        # for a deployment id too; a JSON null body is valid (it clears the pinning).
        self.admin_body_cases(rng, family, method, path, base,
                              {("chat-small",): "string|null", ("embed-small",): "string|null"},
                              set(), [], [("chat-small",)], not_json_expect={"JSON null": frozenset({200})})
        ok, bad = frozenset({200}), frozenset({400})

        def case(kind: str, description: str, body: bytes, expect) -> None:
            self.admin_case(family, kind, description, method, path, body, expect=expect)

        for description, body in [
            ("pin chat-small to local-llama-8b", {"chat-small": "local-llama-8b"}),
            ("pin two models", base),
            ("pin chat-large to its third deployment", {"chat-large": "anthropic-sonnet"}),
            ("unpin chat-small with null", {"chat-small": None}),
            ("an empty object (no pins)", {}),
        ]:
            case("sanity", description, render(body), ok)
        case("sanity", "JSON null (clears every pin)", b"null", ok)
        case("sanity", "JSON null with whitespace around it", b" \r\n null \t", ok)
        for description, body in [
            ("an unknown model", {"no-such-model": "local-llama-8b"}),
            ("an unknown deployment", {"chat-small": "no-such-deployment"}),
            ("a deployment of another model", {"chat-small": "openai-gpt-4o"}),
            ("the embedding deployment for a chat model", {"chat-small": "local-embed"}),
            ("a provider id instead of a deployment", {"chat-small": "local-engine"}),
            ("an engine pool id instead of a deployment", {"chat-small": "local-gpu"}),
            ("the upstream model name instead of the deployment id", {"chat-small": "gpt-4o-mini"}),
            ("the model name as its own deployment", {"chat-small": "chat-small"}),
            ("a tier name as the model", {"standard": "local-llama-8b"}),
            ("the model in uppercase", {"CHAT-SMALL": "local-llama-8b"}),
            ("the deployment in uppercase", {"chat-small": "LOCAL-LLAMA-8B"}),
            ("a trailing space in the model", {"chat-small ": "local-llama-8b"}),
            ("a trailing space in the deployment", {"chat-small": "local-llama-8b "}),
            ("snake_case model key (a key strategy must not rewrite model names)", {"chat_small": "local-llama-8b"}),
            ("an empty model name", {"": "local-llama-8b"}),
            ("a valid pin and an unknown model", {"chat-small": "local-llama-8b", "no-such-model": "local-embed"}),
            ("a valid pin and an unknown deployment", {"chat-small": "local-llama-8b", "embed-small": "nope"}),
            ("the deployments as an array", {"chat-small": ["local-llama-8b", "openai-gpt-4o-mini"]}),
            ("the deployment wrapped in an object", {"chat-small": {"deployment": "local-llama-8b"}}),
            ("the pins wrapped in {\"pinning\": ...}", {"pinning": {"chat-small": "local-llama-8b"}}),
            ("a 5,000-character model name", {"m" * 5000: "local-llama-8b"}),
            ("a 60,000-character model name (under the admin limit)", {"m" * 60_000: "local-llama-8b"}),
            ("a 60,000-character deployment id (under the admin limit)", {"chat-small": "d" * 60_000}),
            ("1,500 unknown models, each with a deployment", {f"model-{i}": "local-llama-8b" for i in range(1500)}),
        ]:
            case("mistyped", description, render(body), bad)
        for description, body in [
            ("an array of [model, deployment] pairs", [["chat-small", "local-llama-8b"]]),
            ("a bare deployment id string", "local-llama-8b"),
            ("true", True),
            ("an integer", 7),
        ]:
            case("not_json", description, render(body), bad)
        # Null unpins; unpinning what was never pinned (or a model that does not exist)
        # changes nothing, so any non-5xx answer will do.
        case("mistyped", "null for a model that does not exist", render({"no-such-model": None}), None)
        case("mistyped", "2,000 unknown models, each null", render({f"model-{i}": None for i in range(2000)}), None)
        case("mistyped", "the same model twice, valid then unknown deployment",
             b'{"chat-small":"local-llama-8b","chat-small":"no-such-deployment"}', None)
        case("mistyped", "the same valid pin 2,000 times",
             b"{" + b",".join([b'"chat-small":"local-llama-8b"'] * 2000) + b"}", None)
        # Model names are echoed in the error (message and param): hostile bytes there
        # must still come back as well-formed JSON.
        for label, raw, how in BAD_STRING_BYTES:
            body = render({"__KEY__": "local-llama-8b"}, {"__KEY__": b'"chat' + raw + b'-small"'})
            case("bad_bytes", f"{label} inside the model name", body, bad)
        for label, raw, how in rng.sample(BAD_STRING_BYTES, 4):
            body = render({"chat-small": "__BAD__"}, {"__BAD__": b'"local' + raw + b'-llama-8b"'})
            case("bad_bytes", f"{label} inside the deployment (explicit)", body, bad)
        for label, name, _ in CONTROL_NAMES:
            case("control_chars", f"model name with {label}", render({f"chat-small{name}": "local-llama-8b"}), bad)
        for description, value, expect in [
            ("600 closed [] as a deployment", b"[" * 600 + b"]" * 600, bad),
            ("5,000 closed {\"a\":...} as a deployment", b'{"a":' * 5000 + b"1" + b"}" * 5000, bad),
            ("1,000 unclosed [ as a deployment", b"[" * 1000, bad),
        ]:
            case("deep_nesting", description, render({"chat-small": "__DEEP__"}, {"__DEEP__": value}), expect)
        # Other tenants' paths.
        for description, value, expect in self.BAD_IDS:
            self.admin_case(family, "bad_path", f"pinning of tenant id {description}", method,
                            f"/admin/v1/tenants/{value}/pinning", render({"chat-small": "local-llama-8b"}),
                            expect=frozenset(expect))
        self.admin_case(family, "bad_path", "pinning of the tenant by name (ids only)", method,
                        "/admin/v1/tenants/hostile-victim/pinning", render({}), expect=frozenset({200, 404}))
        self.admin_case(family, "bad_path", "an empty tenant id", method, "/admin/v1/tenants//pinning", render({}),
                        expect=frozenset({400, 404, 405}))
        self.admin_case(family, "bad_path", "a path segment after pinning", method, f"{path}/extra", render({}),
                        expect=frozenset({404, 405}))
        self.admin_case(family, "bad_path", "GET on the pinning of an unknown tenant", "GET",
                        "/admin/v1/tenants/ten_nope/pinning", expect=frozenset({404, 405}))
        for description, headers, expect in self.bad_admin_auth():
            self.admin_case(family, "bad_auth", description, method, path, render(base), headers=headers,
                            expect=expect)

    def build_admin_pools(self, rng: random.Random) -> None:
        family, path = "admin-pools", "/admin/v1/pools"
        self.admin_case(family, "sanity", "list the engine pools", "GET", path, expect=frozenset({200}))
        for query, expect in [
            ("id=local-gpu", {200}), ("x=%00", {200}), ("x=%FF%FE", {200, 400}), ("%zz=%zz", {200, 400}),
            ("&&&==&", {200, 400}), ("q=" + "p" * 5000, {200, 414}), ("tier=enterprise&tier=standard", {200}),
        ]:
            self.admin_case(family, "bad_query", f"?{short(query, 50)}", "GET", f"{path}?{query}",
                            expect=frozenset(expect))
        for description, sub, expect in [
            ("one pool by id (no such route)", "/local-gpu", {404, 405}),
            ("an unknown pool", "/no-such-pool", {404, 405}),
            ("trailing slash", "/", {200, 404}),
            ("%00 after the path", "/%00", {400, 404, 405}),
            ("a 5,000-character segment", "/" + "p" * 5000, {404, 405, 414}),
            # httpx removes literal dot segments before sending; the raw case below sends them.
            ("percent-encoded dot segments", "/%2e%2e/tenants", {400, 401, 404, 405}),
        ]:
            self.admin_case(family, "bad_path", description, "GET", path + sub, expect=frozenset(expect))
        self.admin_case(family, "bad_path", "uppercase path", "GET", "/admin/v1/POOLS", expect=frozenset({404}))
        self.admin_case(family, "bad_path", "singular /pool", "GET", "/admin/v1/pool", expect=frozenset({404}))
        self.add(Case(family, "bad_headers", "GET with a 1 KB garbage body", "GET", path,
                      bearer(self.ctx.admin_token) + JSON_HEADERS, b"{" * 1000, expect=frozenset({200, 400})))
        self.add(Case(family, "bad_headers", "GET with a body over the admin limit", "GET", path,
                      bearer(self.ctx.admin_token) + JSON_HEADERS, b"x" * 100_000, expect=frozenset({200, 400, 413})))
        for description, headers, expect in self.bad_admin_auth():
            self.admin_case(family, "bad_auth", description, "GET", path, headers=headers, expect=expect)

    def build_raw_pinning_pools(self, rng: random.Random) -> None:
        ctx = self.ctx
        targets = self.raw_targets()
        family, method, path, auth, body = targets["pinning"]
        te = ["Content-Type: application/json", "Transfer-Encoding: chunked"]

        def chunked(payload: bytes) -> bytes:
            return f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"

        for description, extra, payload, options in [
            ("a valid chunked body", te + ["Connection: close"], chunked(body), dict(expect={200})),
            ("chunk size 'zz'", te, b"zz\r\n" + body + b"\r\n0\r\n\r\n", dict(expect={400}, must_close=True)),
            ("chunk longer than its size", te, b"2\r\n" + body + b"\r\n0\r\n\r\n", dict(expect={400}, must_close=True)),
            ("Content-Length and Transfer-Encoding", te + ["Content-Length: 4"], chunked(body), dict(must_close=True)),
        ]:
            raw = self.head(method, path, auth, extra) + payload
            if options.get("must_close"):
                raw += SMUGGLED
            expect = options.pop("expect", None)
            self.raw_case("pinning", "bad_chunked", description, raw, expect=frozenset(expect) if expect else None,
                          **options)
        raw = self.head(method, path, auth, ["Content-Type: application/json", f"Content-Length: {len(body)}",
                                             f"Content-Length: {len(body) + 5}"]) + body + SMUGGLED
        self.raw_case("pinning", "bad_framing", "duplicate Content-Length with different values", raw,
                      expect=frozenset({400}), must_close=True)
        head = self.head(method, path, auth, ["Content-Type: application/json", f"Content-Length: {len(body)}",
                                              "Expect: 100-continue", "Connection: close"])
        self.add(Case(family, "expect_continue", "Expect: 100-continue on the pinning PUT", method, path, raw=head,
                      expect_body=body, expect=frozenset({200})))
        raw = (f"PUT /admin/v1/tenants/\xff\xfe/pinning HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ctx.admin_token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
        self.raw_case("pinning", "bad_request_line", "raw invalid UTF-8 in the tenant id", raw + body,
                      expect=frozenset({400, 404}))
        family, method, path, auth, _ = targets["pools"]
        raw = self.head(method, path + "/../tenants", auth, ["Connection: close"])
        self.raw_case("pools", "bad_request_line", "literal dot segments after /pools (must not reach /tenants)", raw,
                      expect=frozenset({400, 404, 405}))
        for description, extra, expect in [
            ("a 100 KB header value", ["X-Big: " + "a" * 100_000], {400, 431}),
            ("2,000 headers", [f"X-H{i}: v" for i in range(2000)], None),
        ]:
            raw = self.head(method, path, auth, extra + ["Connection: close"])
            self.raw_case("pools", "oversized_headers", description, raw, expect=frozenset(expect) if expect else None)
        for description, line in [
            ("NUL inside the admin token", b"Authorization: Bearer \x00" + ctx.admin_token.encode()),
            ("invalid UTF-8 token", b"Authorization: Bearer \xc3\x28\xa0\xa1"),
        ]:
            raw = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + line + b"\r\n\r\n"
            self.raw_case("pools", "bad_auth", description, raw, expect=frozenset({400, 401, 403}))

    # MARK: admin budgets and webhooks

    # The budget and webhook routes came after the pinning ones; their cases are made last,
    # from a random.Random of their own, so every case before them is what it was. They
    # set budgets and webhooks on the victim tenant, whose requests the corpus never sends.

    BUDGET_BASE = {"period": "month", "limit_tokens": 100_000_000, "limit_micros": 50_000_000_000,
                   "soft_thresholds": [0.5, 0.8], "action": "block"}
    WEBHOOK_BASE = {"url": "http://127.0.0.1:9/hostile-alerts", "events": ["budget.exceeded"]}

    def budget_webhook_routes(self) -> list:
        """routes() for the budget and webhook routes: (family, path, allowed methods, auth, body)."""
        admin, ctx = bearer(self.ctx.admin_token), self.ctx
        return [
            ("admin-budgets", f"/admin/v1/tenants/{ctx.victim_tenant_id}/budget", {"GET", "PUT"}, admin, b"{}"),
            ("admin-budgets", f"/admin/v1/keys/{ctx.victim_key_id}/budget", {"GET", "PUT"}, admin, b"{}"),
            ("admin-budgets", f"/admin/v1/tenants/{ctx.victim_tenant_id}/quota", {"GET"}, admin, b"{}"),
            ("admin-webhooks", f"/admin/v1/tenants/{ctx.victim_tenant_id}/webhooks", {"GET", "POST"}, admin, b"{}"),
            ("admin-webhooks", f"/admin/v1/tenants/{ctx.victim_tenant_id}/webhooks/whk_nope", {"DELETE"}, admin, b"{}"),
        ]

    def build_admin_budgets_and_webhooks(self) -> None:
        rng, ctx = random.Random(f"{self.seed}/admin-budgets-webhooks"), self.ctx
        fields = {("period",): "string", ("limit_tokens",): "integer", ("limit_micros",): "integer",
                  ("soft_thresholds",): "array", ("soft_thresholds", 0): "number", ("action",): "string"}
        for path in (f"/admin/v1/tenants/{ctx.victim_tenant_id}/budget", f"/admin/v1/keys/{ctx.victim_key_id}/budget"):
            # A JSON null body clears the budget (204).
            self.admin_body_cases(rng, "admin-budgets", "PUT", path, self.BUDGET_BASE, fields, {("period",)}, [], [],
                                  not_json_expect={"JSON null": frozenset({204})})
            # Limits from 0 to 2^50 are budgets; anything else, or not a whole number, is 400.
            for name in ("limit_tokens", "limit_micros"):
                for text in NUMERIC_EXTREMES:
                    try:
                        whole = int(text)
                    except ValueError:
                        whole = None
                    in_range = (whole is not None and 0 <= whole <= 1 << 50) or text in ("1E2", "1.0", "-0.0")
                    body = dict(self.BUDGET_BASE, **{name: "__NUM__"})
                    self.admin_case("admin-budgets", "numeric_extreme", f"{name} = {text}", "PUT", path,
                                    render(body, {"__NUM__": text.encode()}), expect=None if in_range else frozenset({400}))
            for description, body, expect in [
                ("a day budget in tokens", {"period": "day", "limit_tokens": 1}, {200}),
                ("a week budget in money that throttles", {"period": "week", "limit_micros": 5, "action": "throttle"}, {200}),
                ("no limit at all", {"period": "day"}, {400}),
                ("both limits null", {"period": "day", "limit_tokens": None, "limit_micros": None}, {400}),
                ("a year period", {"period": "year", "limit_tokens": 1}, {400}),
                ("period in uppercase", {"period": "MONTH", "limit_tokens": 1}, {400}),
                ("a threshold of 1", {"period": "day", "limit_tokens": 1, "soft_thresholds": [1]}, {400}),
                ("a threshold of 0", {"period": "day", "limit_tokens": 1, "soft_thresholds": [0]}, {400}),
                ("a negative threshold", {"period": "day", "limit_tokens": 1, "soft_thresholds": [-0.5]}, {400}),
                ("11 thresholds", {"period": "day", "limit_tokens": 1, "soft_thresholds": [0.05 * i for i in range(1, 12)]},
                 {400}),
                ("the same threshold twice", {"period": "day", "limit_tokens": 1, "soft_thresholds": [0.5, 0.5]}, {200}),
                ("an unknown action", {"period": "day", "limit_tokens": 1, "action": "explode"}, {400}),
                ("a limit of 2^50 + 1", {"period": "day", "limit_tokens": (1 << 50) + 1}, {400}),
            ]:
                self.admin_case("admin-budgets", "sanity" if expect == {200} else "mistyped", description, "PUT", path,
                                render(body), expect=frozenset(expect))
            self.admin_case("admin-budgets", "sanity", "read the budget", "GET", path, expect=frozenset({200, 404}))
            self.admin_case("admin-budgets", "sanity", "clear with JSON null", "PUT", path, b"null",
                            expect=frozenset({204}))
        webhooks = f"/admin/v1/tenants/{ctx.victim_tenant_id}/webhooks"
        self.admin_body_cases(rng, "admin-webhooks", "POST", webhooks, self.WEBHOOK_BASE,
                              {("url",): "string", ("events",): "array", ("events", 0): "string"}, {("url",)}, [], [])
        for description, body, expect in [
            ("every event by default", {"url": "https://example.com/hooks"}, {201}),
            ("no events", {"url": "https://example.com/hooks", "events": []}, {400}),
            ("an unknown event", {"url": "https://example.com/hooks", "events": ["budget.exploded"]}, {400}),
            ("a 5,000-character event name", {"url": "https://example.com/hooks", "events": ["e" * 5000]}, {400}),
            ("an ftp URL", {"url": "ftp://example.com/hooks"}, {400}),
            ("a URL without a host", {"url": "http:///hooks"}, {400}),
            ("not a URL", {"url": "alerts please"}, {400}),
            ("a 3,000-byte URL", {"url": "https://example.com/" + "p" * 3000}, {400}),
            ("javascript: URL", {"url": "javascript:alert(1)"}, {400}),
        ]:
            self.admin_case("admin-webhooks", "sanity" if expect == {201} else "mistyped", description, "POST", webhooks,
                            render(body), expect=frozenset(expect))
        self.admin_case("admin-webhooks", "sanity", "list webhooks", "GET", webhooks, expect=frozenset({200}))
        for description, value, expect in self.BAD_IDS:
            self.admin_case("admin-budgets", "bad_path", f"budget of tenant id {description}", "GET",
                            f"/admin/v1/tenants/{value}/budget", expect=frozenset(expect))
            self.admin_case("admin-budgets", "bad_path", f"budget of key id {description}", "PUT",
                            f"/admin/v1/keys/{value}/budget", render({"period": "day", "limit_tokens": 1}),
                            expect=frozenset(expect))
            self.admin_case("admin-budgets", "bad_path", f"quota of tenant id {description}", "GET",
                            f"/admin/v1/tenants/{value}/quota", expect=frozenset(expect))
            self.admin_case("admin-webhooks", "bad_path", f"webhooks of tenant id {description}", "GET",
                            f"/admin/v1/tenants/{value}/webhooks", expect=frozenset(expect))
            # `..` leaves the webhook for the tenant itself, which answers GET only: 405.
            self.admin_case("admin-webhooks", "bad_path", f"webhook id {description}", "DELETE",
                            f"{webhooks}/{value}", expect=frozenset(expect | {405} if value == ".." else expect))
            self.admin_case("admin-webhooks", "bad_path", f"deliveries of webhook id {description}", "GET",
                            f"{webhooks}/{value}/deliveries", expect=frozenset(expect))
        for query in ("limit=0", "limit=-1", "limit=1001", "limit=abc", "limit=1e3", "limit=%00"):
            self.admin_case("admin-webhooks", "bad_query", f"deliveries ?{query}", "GET",
                            f"{webhooks}/whk_nope/deliveries?{query}", expect=frozenset({400, 404}))
        # A budget the corpus has just cleared is a 404 to GET, and so to HEAD.
        self.build_methods(self.budget_webhook_routes(), head_also=frozenset({404}))

    # MARK: users, sessions, invites and the audit log

    # Users, roles and the audit log came after the budgets and webhooks; their cases are
    # made last, from a random.Random of their own, so every case before them is what it
    # was. They invite to, and remove users from, the victim tenant only.
    #
    # The sign-in throttle (LoginThrottle) counts a failure only for a well-formed
    # {email, password} body that does not sign in: a body that does not decode is refused
    # before the throttle is asked. It allows 5 failures per email and 20 per client
    # address in 15 minutes, and every case comes from 127.0.0.1, so a flood of failed
    # sign-ins would make the valid sign-in 429. The runner shuffles the corpus, so the
    # login family cannot simply run last; instead its well-formed failures are budgeted:
    # LOGIN_FAILURES (each passes 401, or 429) per pass on emails of their own, plus
    # THROTTLE_ATTEMPTS on one dedicated email, which trips its per-email limit after 5.
    # Over two passes on one process that is at most 2 × 6 + 7 = 19 failures from the
    # address (a 429 records none): the address never trips, the valid sign-in stays 200.
    # (A restart forgets the throttle.) test_hostile_input checks that the dedicated email
    # did get its 429.
    LOGIN_FAILURES = 6
    THROTTLE_ATTEMPTS = 7
    THROTTLE_EMAIL = "hostile-throttle@hostile.example"
    # Unauthenticated bodies (sign-in, accepting an invite) are read up to 16 KiB.
    AUTH_MAX_BODY_BYTES = 16 << 10
    # A well-formed invite secret that names no invite.
    BOGUS_INVITE = "sy-invite-" + "Z" * 43

    def account_routes(self) -> list:
        """routes() for the account and user routes: (family, path, allowed methods, auth, body)."""
        ctx = self.ctx
        admin, org_admin = bearer(ctx.admin_token), bearer(ctx.org_admin_token)
        cookie = [("cookie", f"switchyard_session={ctx.org_admin_token}")]
        victim = f"/admin/v1/tenants/{ctx.victim_tenant_id}"
        return [
            ("auth-login", "/auth/login", {"POST"}, [], b"{}"),
            ("auth-invites", f"/auth/invites/{self.BOGUS_INVITE}/accept", {"POST"}, [], b"{}"),
            ("auth-tokens", "/auth/tokens", {"GET", "POST"}, org_admin, b"{}"),
            ("auth-cookies", "/auth/me", {"GET"}, cookie, b"{}"),
            ("admin-invites", f"{victim}/invites", {"GET", "POST"}, admin, b"{}"),
            ("admin-users", "/admin/v1/users", {"GET", "POST"}, admin, b"{}"),
            ("admin-users", f"{victim}/users/usr_nope", {"DELETE"}, admin, b"{}"),
            ("admin-audit", "/admin/v1/audit", {"GET"}, admin, b"{}"),
        ]

    def build_accounts(self) -> None:
        rng = random.Random(f"{self.seed}/users-audit")
        self.build_login(rng)
        self.build_invite_accept(rng)
        self.build_access_tokens(rng)
        self.build_invites(rng)
        self.build_global_users(rng)
        self.build_user_removal()
        self.build_audit(rng)
        self.build_cookies()
        # A user or invite listing is never empty here, but a token listing may be: HEAD is GET.
        self.build_methods(self.account_routes())

    def sampled_body_cases(self, rng: random.Random, keep: int, *args, **options) -> None:
        """admin_body_cases, of which a seeded `keep` are kept (in their order): the full set
        for every new route would double the corpus."""
        start = len(self.cases)
        self.admin_body_cases(rng, *args, **options)
        made = self.cases[start:]
        chosen = sorted(rng.sample(range(len(made)), min(keep, len(made))))
        self.cases[start:] = [made[index] for index in chosen]

    def login_case(self, kind: str, description: str, body: bytes, expect) -> None:
        self.add(Case("auth-login", kind, description, "POST", "/auth/login", list(JSON_HEADERS), body,
                      expect=frozenset(expect)))

    def build_login(self, rng: random.Random) -> None:
        ctx = self.ctx
        bad, failed = {400}, {401, 429}
        base = {"email": "hostile-nobody@hostile.example", "password": "not the password 0123"}
        self.login_case("sanity", "the login user signs in", render({"email": ctx.login_email, "password": ctx.login_password}),
                        {200})
        # Well-formed failures: LOGIN_FAILURES of them, each counted by the throttle.
        failures = [
            ("an unknown email", base),
            ("the login user with a wrong password", {"email": ctx.login_email, "password": "wrong password 0123"}),
            ("the login user's email in capitals and spaces, wrong password",
             {"email": "  " + ctx.login_email.upper() + " ", "password": "wrong password 4567"}),
            ("a 10,000-character email (under the 16 KiB limit)", dict(base, email="e" * 10_000 + "@hostile.example")),
            ("CRLF header injection in the email", dict(base, email="a@b.c\r\nBcc: x@hostile.example")),
            ("a unicode email", dict(base, email="ünïcödé@例え.jp")),
        ]
        assert len(failures) == self.LOGIN_FAILURES
        for description, body in failures:
            self.login_case("bad_auth", description, render(body), failed)
        for attempt in range(1, self.THROTTLE_ATTEMPTS + 1):
            self.login_case("bad_auth", f"throttle: wrong password {attempt} for the dedicated email",
                            render({"email": self.THROTTLE_EMAIL, "password": f"wrong password {attempt:04d}"}), failed)
        # Everything else is refused before the throttle: 400, or 413 over 16 KiB.
        for field_name in ("email", "password"):
            wrong = [v for v in WRONG_VALUES if v[2] != "string"]
            for label, value, _ in rng.sample(wrong, 4):
                self.login_case("mistyped", f"{field_name} = {label} (wants string)", render(dict(base, **{field_name: value})),
                                bad)
        for description, body in [("no email", {"password": base["password"]}), ("no password", {"email": base["email"]}),
                                  ("an empty object", {}), ("the fields nested in an object", {"login": base}),
                                  ("the fields in camelCase capitals", {"Email": base["email"], "Password": "x"})]:
            self.login_case("mistyped", description, render(body), bad)
        valid = render(base)
        for cut in sorted(set([1, len(valid) - 1] + rng.sample(range(2, len(valid) - 1), 3))):
            self.login_case("truncated_json", f"body cut at byte {cut} of {len(valid)}", valid[:cut], bad)
        for field_name in ("email", "password"):
            for label, raw, _ in rng.sample([b for b in BAD_STRING_BYTES if b[2] == "raw"], 3):
                raw_value = b'"' + base[field_name][:3].encode() + raw + base[field_name][3:].encode() + b'"'
                self.login_case("bad_bytes", f"{label} inside {field_name}",
                                render(dict(base, **{field_name: "__BAD__"}), {"__BAD__": raw_value}), bad)
        for description, body, expect in [
            ("10,000 unclosed [ as the body", b"[" * 10_000, bad),
            ("3,000 unclosed {\"a\": as the body", b'{"a":' * 3_000, bad),
            ("20,000 unclosed [ (over the 16 KiB limit)", b"[" * 20_000, {413}),
            ("1,000 unclosed [ in the password", render(dict(base, password="__D__"), {"__D__": b"[" * 1000}), bad),
            ("an object of arrays as the email", render(dict(base, email={"a": [[[[{"b": None}]]]]})), bad),
        ]:
            self.login_case("deep_nesting", description, body, expect)
        not_json = [
            ("empty body", b""), ("whitespace only", b" \r\n\t "), ("JSON null", b"null"),
            ("JSON array of the body", b"[" + valid + b"]"), ("JSON string", b'"email"'), ("JSON number", b"12345"),
            ("form-encoded", b"email=a%40b.c&password=x"), ("XML", b"<login><email>a@b.c</email></login>"),
            ("trailing garbage after the object", valid + b"xyz"), ("two objects", valid + valid),
            ("comment inside", valid[:1] + b"/* c */" + valid[1:]), ("single quotes", valid.replace(b'"', b"'")),
            ("unterminated string", b'{"email":"a@b.c'),
        ]
        for description, body in rng.sample(not_json, 7):
            self.login_case("not_json", description, body, bad)
        for description, body in [
            (f"{self.AUTH_MAX_BODY_BYTES + 1}-byte body over the 16 KiB limit", self.padded_admin(base, self.AUTH_MAX_BODY_BYTES + 1)),
            ("200000-byte body", self.padded_admin(base, 200_000)),
            ("a 20,000-character email (over the 16 KiB limit)", render(dict(base, email="e" * 20_000))),
            ("a 20,000-character password (over the 16 KiB limit)", render(dict(base, password="p" * 20_000))),
        ]:
            self.login_case("oversized_body", description, body, {413})

    def accept_case(self, kind: str, description: str, token: str, body: bytes, expect) -> None:
        self.add(Case("auth-invites", kind, description, "POST", f"/auth/invites/{token}/accept", list(JSON_HEADERS), body,
                      expect=frozenset(expect) if expect is not None else None))

    def build_invite_accept(self, rng: random.Random) -> None:
        ctx = self.ctx
        base = {"name": "Hostile Invitee", "password": "hostile-password-0123"}
        path = f"/auth/invites/{self.BOGUS_INVITE}/accept"
        # Bodies go to a well-formed token that names no invite: the body is judged before
        # the token, so a bad one is 400 and a good one 404, and no case uses up an invite.
        self.sampled_body_cases(rng, 22, "auth-invites", "POST", path, base, {("name",): "string", ("password",): "string"},
                              {("name",), ("password",)}, [], [("name",)], body_limit=self.AUTH_MAX_BODY_BYTES,
                              auth_cases=False)
        self.accept_case("sanity", "accept the open invite (used by the second pass)", ctx.invite_token, render(base),
                         {201, 404})
        for description, token in [
            ("an empty token", ""), ("a 5,000-character token", "sy-invite-" + "t" * 5000), ("%00", "%00"),
            ("sy-invite- and %00", "sy-invite-%00"), ("the scheme alone", "sy-invite-"),
            ("path traversal", "..%2F..%2Fadmin%2Fv1%2Ftenants"), ("dot segment", "%2e%2e"),
            ("unicode", "sy-invite-%E2%80%AE%F0%9F%9A%80"), ("invalid UTF-8", "%FF%FE"),
            ("the token in capitals", ctx.invite_token.upper()), ("the token one character short", ctx.invite_token[:-1]),
            ("a session token", ctx.org_admin_token), ("SQL quote", "'%20OR%20'1'='1"),
        ]:
            self.accept_case("bad_path", f"{description} as the invite token", token, render(base), {400, 404, 405})
        for description, password, expect in [
            ("11 bytes", "p" * 11, {400}), ("empty", "", {400}), ("73 bytes", "p" * 73, {400}),
            ("37 two-byte characters (74 bytes)", "é" * 37, {400}), ("3 four-byte characters (12 bytes)", "🚀🚀🚀", {404}),
            ("72 bytes", "p" * 72, {404}), ("12 spaces", " " * 12, {404}),
        ]:
            # The real token with a refused password: refused before the invite is looked up.
            token = ctx.invite_token if expect == {400} else self.BOGUS_INVITE
            self.accept_case("mistyped", f"a password of {description}", token, render(dict(base, password=password)), expect)
        self.accept_case("control_chars", "a name with a newline, for the real token", ctx.invite_token,
                         render(dict(base, name="evil\nname")), {400})

    def build_access_tokens(self, rng: random.Random) -> None:
        ctx = self.ctx
        family, path = "auth-tokens", "/auth/tokens"
        self.sampled_body_cases(rng, 25, family, "POST", path, {"name": "hostile-token", "expires_at": "2030-01-01T00:00:00Z"},
                              {("name",): "string", ("expires_at",): "string"}, {("name",)}, [], [("name",)],
                              token=ctx.org_admin_token)
        for description, body, expect in [
            ("a token without expiry", {"name": "hostile-forever"}, {201}),
            ("expiry in the past", {"name": "t", "expires_at": "2001-01-01T00:00:00Z"}, {400}),
            ("expiry at the epoch", {"name": "t", "expires_at": "1970-01-01T00:00:00Z"}, {400}),
            ("a date without a time", {"name": "t", "expires_at": "2030-01-01"}, {400}),
            ("month 13", {"name": "t", "expires_at": "2030-13-01T00:00:00Z"}, {400}),
            ("February 30", {"name": "t", "expires_at": "2030-02-30T00:00:00Z"}, {400}),
            ("hour 25", {"name": "t", "expires_at": "2030-01-01T25:00:00Z"}, {400}),
            ("year 99999 (not RFC 3339, but a far future)", {"name": "t", "expires_at": "99999-01-01T00:00:00Z"}, {201, 400}),
            ("a Unix timestamp as a string", {"name": "t", "expires_at": "1924992000"}, {400}),
            ("a Unix timestamp as a number", {"name": "t", "expires_at": 1924992000}, {400}),
            ("'tomorrow'", {"name": "t", "expires_at": "tomorrow"}, {400}),
            ("an RFC 2822 date", {"name": "t", "expires_at": "Tue, 01 Jan 2030 00:00:00 GMT"}, {400}),
            ("a NUL after the date", {"name": "t", "expires_at": "2030-01-01T00:00:00Z\u0000"}, {400}),
        ]:
            self.admin_case(family, "sanity" if expect == {201} else "mistyped", description, "POST", path, render(body),
                            expect=frozenset(expect), token=ctx.org_admin_token)
        self.admin_case(family, "sanity", "list my tokens", "GET", path, expect=frozenset({200}), token=ctx.org_admin_token)
        self.admin_case(family, "bad_auth", "the admin token has no tokens of its own", "POST", path,
                        render({"name": "admin-token"}), expect=frozenset({403}))
        for description, value, expect in self.BAD_IDS[:6] + [("a tenant key id", ctx.victim_key_id, {404})]:
            # `..` leaves /auth/tokens for /auth, which is no route.
            self.admin_case(family, "bad_path", f"revoke token id {description}", "DELETE", f"{path}/{value}",
                            expect=frozenset(expect), token=ctx.org_admin_token)
        for description, headers, expect in rng.sample(self.bad_admin_auth(), 4):
            self.admin_case(family, "bad_auth", description, "GET", path, headers=headers, expect=frozenset({401}))

    def build_invites(self, rng: random.Random) -> None:
        ctx = self.ctx
        family, path = "admin-invites", f"/admin/v1/tenants/{ctx.victim_tenant_id}/invites"
        base = {"email": "hostile-invitee@hostile.example", "role": "org_user"}
        self.sampled_body_cases(rng, 20, family, "POST", path, base, {("email",): "string", ("role",): "string"},
                              {("email",), ("role",)}, [], [])
        bad = frozenset({400})
        for who, token in (("admin token", ctx.admin_token), ("org admin", ctx.org_admin_token)):
            for description, body, expect in [
                ("an org user", base, {201}),
                ("an org admin", dict(base, role="org_admin"), {201}),
                ("no @", dict(base, email="hostile.example"), bad),
                ("two @", dict(base, email="a@b@hostile.example"), bad),
                ("nothing before the @", dict(base, email="@hostile.example"), bad),
                ("a domain without a dot", dict(base, email="a@localhost"), bad),
                ("CRLF header injection", dict(base, email="a@b.c\r\nBcc: x@hostile.example"), bad),
                ("a bare LF", dict(base, email="a@b.c\nBcc: x@hostile.example"), bad),
                ("a space", dict(base, email="a b@hostile.example"), bad),
                ("a display name with angle brackets", dict(base, email="Eve <eve@hostile.example>"), bad),
                ("two addresses", dict(base, email="a@hostile.example,b@hostile.example"), bad),
                ("255 characters", dict(base, email="e" * 239 + "@hostile.example"), bad),
                ("60,000 characters", dict(base, email="e" * 60_000 + "@hostile.example"), bad),
                ("a NUL", dict(base, email="a\u0000@hostile.example"), bad),
                ("a bidi override", dict(base, email="\u202eevil@hostile.example"), bad),
                ("a zero-width space", dict(base, email="zero\u200bwidth@hostile.example"), bad),
                ("a C1 control U+0085", dict(base, email="nel\u0085@hostile.example"), bad),
                ("a fullwidth @", dict(base, email="a\uff20hostile.example"), bad),
                ("a unicode address", dict(base, email="ünïcödé@例え.jp"), {201, 400}),
                ("role system_admin", dict(base, role="system_admin"), bad),
                ("role analyst", dict(base, role="analyst"), bad),
                ("role garbage", dict(base, role="root"), bad),
                ("role in capitals", dict(base, role="ORG_USER"), bad),
                ("role empty", dict(base, role=""), bad),
                ("the login user's email", dict(base, email=ctx.login_email), {409}),
                ("the login user's email in capitals and spaces", dict(base, email=" " + ctx.login_email.upper() + " "), {409}),
            ]:
                # The org admin gets what its role changes, and a few of the address checks.
                if who == "org admin" and not description.startswith(("an org", "role", "the login", "CRLF", "a bidi", "60,000")):
                    continue
                kind = "sanity" if expect == {201} else ("control_chars" if "control" in description or "NUL" in description
                                                         else "mistyped")
                self.admin_case(family, kind, f"as the {who}: {description}", "POST", path, render(body),
                                expect=frozenset(expect), token=token)
        self.admin_case(family, "sanity", "list the open invites", "GET", path, expect=frozenset({200}))
        self.admin_case(family, "bad_scope", "the org admin inviting to another tenant", "POST",
                        f"/admin/v1/tenants/{ctx.tenant_id}/invites", render(base), expect=frozenset({404}),
                        token=ctx.org_admin_token)
        for description, value, expect in self.BAD_IDS[:6]:
            self.admin_case(family, "bad_path", f"invites of tenant id {description}", "POST",
                            f"/admin/v1/tenants/{value}/invites", render(base), expect=frozenset(expect | {405}
                            if value == ".." else expect))

    def build_global_users(self, rng: random.Random) -> None:
        ctx = self.ctx
        family, path = "admin-users", "/admin/v1/users"
        base = {"email": "hostile-analyst@hostile.example", "name": "Hostile Analyst", "role": "analyst",
                "password": "hostile-password-0123"}
        self.sampled_body_cases(rng, 25, family, "POST", path, base,
                              {("email",): "string", ("name",): "string", ("role",): "string", ("password",): "string"},
                              {("email",), ("name",), ("role",), ("password",)}, [], [("name",)])
        bad = frozenset({400})
        for description, body, expect in [
            ("a system admin", dict(base, email="hostile-sysadmin@hostile.example", role="system_admin"), {201, 409}),
            ("an analyst", base, {201, 409}),
            ("role org_user", dict(base, role="org_user"), bad),
            ("role org_admin", dict(base, role="org_admin"), bad),
            ("role garbage", dict(base, role="superuser"), bad),
            ("role with a NUL", dict(base, role="analyst\u0000"), bad),
            ("an 11-byte password", dict(base, password="p" * 11), bad),
            ("a 73-byte password", dict(base, password="p" * 73), bad),
            ("an empty password", dict(base, password=""), bad),
            ("an email without @", dict(base, email="hostile.example"), bad),
            ("CRLF in the email", dict(base, email="a@b.c\r\nBcc: x@hostile.example"), bad),
            ("the login user's email", dict(base, email=ctx.login_email), {409}),
        ]:
            self.admin_case(family, "sanity" if 201 in expect else "mistyped", description, "POST", path, render(body),
                            expect=frozenset(expect))
        self.admin_case(family, "bad_auth", "the org admin creating a global user", "POST", path, render(base),
                        expect=frozenset({403}), token=ctx.org_admin_token)
        self.admin_case(family, "bad_auth", "the org admin listing global users", "GET", path, expect=frozenset({403}),
                        token=ctx.org_admin_token)
        self.admin_case(family, "sanity", "list the global users", "GET", path, expect=frozenset({200}))

    def build_user_removal(self) -> None:
        ctx = self.ctx
        users = f"/admin/v1/tenants/{ctx.victim_tenant_id}/users"
        for description, value, expect in self.BAD_IDS + [("a tenant key id", ctx.victim_key_id, {404})]:
            # `..` leaves the user for the tenant itself, which answers GET only: 405.
            self.admin_case("admin-users", "bad_path", f"remove user id {description}", "DELETE", f"{users}/{value}",
                            expect=frozenset(expect | {405} if value == ".." else expect), token=ctx.org_admin_token)
        for description, value, expect in self.BAD_IDS[:4]:
            self.admin_case("admin-users", "bad_path", f"users of tenant id {description}", "DELETE",
                            f"/admin/v1/tenants/{value}/users/usr_nope", expect=frozenset(expect))
        self.admin_case("admin-users", "bad_scope", "the org admin removing a user of another tenant", "DELETE",
                        f"/admin/v1/tenants/{ctx.tenant_id}/users/usr_nope", expect=frozenset({404}),
                        token=ctx.org_admin_token)
        self.admin_case("admin-users", "sanity", "list the victim's users", "GET", users, expect=frozenset({200}),
                        token=ctx.org_admin_token)

    def build_audit(self, rng: random.Random) -> None:
        ctx = self.ctx
        family, path = "admin-audit", "/admin/v1/audit"
        for query, expect in [
            ("", {200}), ("limit=1", {200}), ("limit=1000", {200}), ("cursor=abc", {400}), ("cursor=-1", {400}),
            ("cursor=0", {400}), ("cursor=99999999999999999999", {400}), ("cursor=1.5", {400}), ("cursor=%00", {400}),
            ("cursor=1", {200}), ("limit=0", {400}), ("limit=-1", {400}), ("limit=100000", {400}), ("limit=abc", {400}),
            ("limit=1e3", {400}), ("limit=99999999999999999999", {400}), ("from=garbage", {400}), ("from=2026-13-45", {400}),
            ("to=2026-11-01T25:00:00Z", {400}), ("from=%FF", {400}), ("from=2026-11-02&to=2026-11-01", {200, 400}),
            ("from=2026-11-01&to=2026-11-02", {200}), ("action=%00", {200}), ("action=login_failed", {200}),
            ("action=" + "a" * 5000, {200, 414}), ("actor=%27%3B%20DROP%20TABLE%20audit%3B--", {200}),
            (f"tenant={ctx.victim_tenant_id}", {200}), ("tenant=ten_nope", {200, 404}), ("tenant=%00", {200, 404}),
            ("tenant=" + "t" * 5000, {200, 404, 414}), ("%zz=%zz", {200, 400}), ("&&&==&", {200, 400}),
            ("cursor=1&cursor=abc", {200, 400}), ("limit=1&limit=0", {200, 400}),
        ]:
            self.admin_case(family, "bad_query", f"?{short(query, 50)}", "GET", f"{path}?{query}", expect=frozenset(expect))
        for query, expect in [
            ("", {200}), (f"tenant={ctx.victim_tenant_id}", {200}), (f"tenant={ctx.tenant_id}", {404}),
            (f"tenant={ctx.other_tenant_id}&limit=1", {404}), ("tenant=ten_nope", {404}), ("cursor=abc", {400}),
            ("limit=0", {400}), ("from=garbage", {400}),
        ]:
            self.admin_case(family, "bad_scope" if "tenant" in query else "bad_query", f"as the org admin: ?{query}",
                            "GET", f"{path}?{query}", expect=frozenset(expect), token=ctx.org_admin_token)
        for description, headers, expect in rng.sample(self.bad_admin_auth(), 5):
            self.admin_case(family, "bad_auth", description, "GET", path, headers=headers, expect=frozenset({401}))
        self.admin_case(family, "bad_path", "one entry by id (no such route)", "GET", f"{path}/1", expect=frozenset({404, 405}))

    def build_cookies(self) -> None:
        ctx = self.ctx
        family, session = "auth-cookies", ctx.org_admin_token
        csrf = csrf_token(session)
        valid = f"switchyard_session={session}"
        tokens_body = render({"name": "cookie-token"})

        def case(kind: str, description: str, method: str, path: str, headers: list, expect, body=None, code=None):
            self.add(Case(family, kind, description, method, path, headers + (JSON_HEADERS if body is not None else []),
                          body, expect=frozenset(expect), code=code))

        for description, cookie, expect in [
            ("garbage", "switchyard_session=garbage-!@#$%^&*()", {401}),
            ("an empty value", "switchyard_session=", {401}),
            ("the session scheme alone", "switchyard_session=sy-session-", {401}),
            ("a well-formed unknown session", "switchyard_session=sy-session-" + "Q" * 43, {401}),
            ("the session one character short", f"switchyard_session={session[:-1]}", {401}),
            ("an access-token-shaped value", "switchyard_session=sy-pat-" + "Q" * 43, {401}),
            ("the admin token as the session", f"switchyard_session={ctx.admin_token}", {401}),
            ("a tenant key as the session", f"switchyard_session={ctx.key}", {401}),
            ("an 8 KiB value", "switchyard_session=" + "c" * 8192, {401, 431}),
            ("200 other cookies", "; ".join(f"c{i}=v{i}" for i in range(200)), {401}),
            ("200 other cookies, then the session", "; ".join(f"c{i}=v{i}" for i in range(200)) + "; " + valid, {200}),
            ("the session twice", f"{valid}; {valid}", {200}),
            ("garbage, then the session", f"switchyard_session=garbage; {valid}", {200, 401}),
            ("the session in quotes", f'switchyard_session="{session}"', {200, 401}),
            ("the cookie name in capitals", f"SWITCHYARD_SESSION={session}", {200, 401}),
            ("no '=' at all", "switchyard_session", {401}),
            ("only separators", ";;;; ;= ;==", {401}),
            ("the valid session", valid, {200}),
        ]:
            case("bad_auth" if expect != {200} else "sanity", f"Cookie: {description}", "GET", "/auth/me",
                 [("cookie", cookie)], expect)
        case("bad_auth", "two Cookie headers, garbage and the session", "GET", "/auth/me",
             [("cookie", "switchyard_session=garbage"), ("cookie", valid)], {200, 401})
        case("bad_auth", "a bearer admin token wins over a garbage cookie", "GET", "/admin/v1/tenants",
             bearer(ctx.admin_token) + [("cookie", "switchyard_session=garbage")], {200})
        # Writes with the cookie must send the session's CSRF token.
        for description, headers, expect, code in [
            ("no x-csrf-token", [], {403}, "csrf_failed"),
            ("a wrong x-csrf-token", [("x-csrf-token", "wrong")], {403}, "csrf_failed"),
            ("an empty x-csrf-token", [("x-csrf-token", "")], {403}, "csrf_failed"),
            ("the CSRF token of another session", [("x-csrf-token", csrf_token("sy-session-" + "Q" * 43))], {403},
             "csrf_failed"),
            ("the CSRF token one character short", [("x-csrf-token", csrf[:-1])], {403}, "csrf_failed"),
            ("the session itself as the CSRF token", [("x-csrf-token", session)], {403}, "csrf_failed"),
            ("an 8 KiB x-csrf-token", [("x-csrf-token", "x" * 8192)], {403, 431}, None),
            ("the CSRF token twice in one header", [("x-csrf-token", f"{csrf}, {csrf}")], {403}, "csrf_failed"),
            ("the right CSRF token", [("x-csrf-token", csrf)], {201}, None),
        ]:
            case("sanity" if expect == {201} else "bad_auth", f"session cookie POST /auth/tokens with {description}", "POST",
                 "/auth/tokens", [("cookie", valid)] + headers, expect, tokens_body, code)
        for description, method, path, body, headers, expect, code in [
            ("DELETE a token, no x-csrf-token", "DELETE", "/auth/tokens/pat_nope", None, [], {403}, "csrf_failed"),
            ("DELETE a token, the right CSRF token", "DELETE", "/auth/tokens/pat_nope", None, [("x-csrf-token", csrf)],
             {404}, None),
            ("PUT limits, no x-csrf-token", "PUT", f"/admin/v1/tenants/{ctx.victim_tenant_id}/limits",
             render({"requests_per_minute": 100}), [], {403}, "csrf_failed"),
            ("POST a tenant key, a wrong x-csrf-token", "POST", f"/admin/v1/tenants/{ctx.victim_tenant_id}/keys",
             render({"name": "cookie-key"}), [("x-csrf-token", "nope")], {403}, "csrf_failed"),
            ("POST an invite, no x-csrf-token", "POST", f"/admin/v1/tenants/{ctx.victim_tenant_id}/invites",
             render({"email": "cookie@hostile.example", "role": "org_user"}), [], {403}, "csrf_failed"),
            ("POST logout, no x-csrf-token (must not sign out)", "POST", "/auth/logout", None, [], {403}, "csrf_failed"),
            ("GET audit needs no CSRF token", "GET", "/admin/v1/audit", None, [], {200}, None),
        ]:
            case("bad_auth" if code else "sanity", f"session cookie: {description}", method, path,
                 [("cookie", valid)] + headers, expect, body, code)
        case("bad_auth", "a garbage cookie POST without x-csrf-token is 401, not 403", "POST", "/auth/tokens",
             [("cookie", "switchyard_session=garbage")], {401}, tokens_body)

    def build(self) -> list[Case]:
        self.build_inference()
        self.build_models()
        self.build_admin()
        self.build_methods()
        self.build_health_metrics()
        self.build_raw_chunked()
        self.build_raw_request_lines()
        self.build_raw_headers()
        self.build_raw_expect()
        self.build_admin_pinning_and_pools()
        self.build_admin_budgets_and_webhooks()
        self.build_accounts()
        for index, case in enumerate(self.cases):
            case.id = f"H{index:04d}"
        return self.cases


def build_corpus(ctx: Context, seed: int = SEED) -> list[Case]:
    return Corpus(ctx, seed).build()


def tally(cases: list[Case]) -> str:
    """A table of cases per family and kind."""
    by = Counter((c.family, c.kind) for c in cases)
    families = sorted({c.family for c in cases})
    kinds = sorted({c.kind for c in cases})
    width = max(len(f) for f in families) + 2
    lines = [" " * width + " ".join(f"{k[:10]:>10}" for k in kinds) + "      total"]
    for family in families:
        row = [by.get((family, k), 0) for k in kinds]
        lines.append(f"{family:<{width}}" + " ".join(f"{n or '':>10}" for n in row) + f" {sum(row):>10}")
    totals = [sum(by.get((f, k), 0) for f in families) for k in kinds]
    lines.append(f"{'total':<{width}}" + " ".join(f"{n:>10}" for n in totals) + f" {sum(totals):>10}")
    transports = Counter(c.transport for c in cases)
    lines.append(f"transports: {dict(transports)}")
    return "\n".join(lines)


# MARK: - The raw HTTP/1.1 client


@dataclass
class Answer:
    status: int
    reason: str
    headers: list  # (lowercase name, value)
    body: bytes
    # What was wrong with the response's own framing.
    notes: list = field(default_factory=list)

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class Outcome:
    answer: Optional[Answer] = None
    # Why there was no answer: "closed", "reset", "timeout", "refused", or an error.
    failure: Optional[str] = None
    interim: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    elapsed: float = 0.0
    closed_after: Optional[bool] = None


class Incomplete(Exception):
    pass


class RawConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.buffer = b""
        self.eof = False

    async def fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise asyncio.TimeoutError
        data = await asyncio.wait_for(self.reader.read(65536), remaining)
        if not data:
            self.eof = True
            raise Incomplete("closed")
        self.buffer += data

    async def until(self, marker: bytes, deadline: float) -> bytes:
        while marker not in self.buffer:
            if len(self.buffer) > 4 << 20:
                raise Incomplete("response head over 4 MB")
            await self.fill(deadline)
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    async def exactly(self, count: int, deadline: float) -> bytes:
        while len(self.buffer) < count:
            await self.fill(deadline)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    async def response(self, deadline: float, head_request: bool = False) -> Answer:
        head = await self.until(b"\r\n\r\n", deadline)
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise Incomplete(f"not an HTTP response: {excerpt(head, 80)}")
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        answer = Answer(status, parts[2] if len(parts) > 2 else "", headers, b"")
        if 100 <= status < 200 or status in (204, 304) or head_request:
            return answer
        encoding = (answer.header("transfer-encoding") or "").lower()
        length = answer.header("content-length")
        if "chunked" in encoding:
            body = b""
            while True:
                size_line = await self.until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await self.until(b"\r\n", deadline)  # trailers end (assumes none)
                    break
                body += await self.exactly(size, deadline)
                await self.exactly(2, deadline)
            answer.body = body
        elif length is not None:
            answer.body = await self.exactly(int(length), deadline)
        else:
            # No framing: the body ends when the server closes the connection.
            while True:
                try:
                    await self.fill(deadline)
                except Incomplete:
                    break
                except asyncio.TimeoutError:
                    answer.notes.append(
                        f"{status} response without Content-Length or chunked framing, and the connection stayed "
                        f"open: the client cannot find its end (hang)"
                    )
                    break
            answer.body, self.buffer = self.buffer, b""
        return answer

    async def send(self, data: bytes) -> Optional[str]:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), RAW_TIMEOUT)
            return None
        except (ConnectionError, BrokenPipeError) as error:
            return f"send failed: {type(error).__name__}"
        except asyncio.TimeoutError:
            return "send timed out (the server stopped reading)"

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:
            pass


async def raw_exchange(host: str, port: int, case: Case) -> Outcome:
    started = time.monotonic()
    outcome = Outcome()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, limit=8 << 20), 5)
    except (ConnectionError, OSError, asyncio.TimeoutError) as error:
        outcome.failure = f"refused ({type(error).__name__})"
        return outcome
    connection = RawConnection(reader, writer)
    try:
        await _raw_exchange(connection, case, outcome)
    finally:
        connection.close()
        outcome.elapsed = time.monotonic() - started
    return outcome


async def _raw_exchange(connection: RawConnection, case: Case, outcome: Outcome) -> None:
    head_request = case.raw.startswith(b"HEAD ")
    send_error = await connection.send(case.raw)
    deadline = time.monotonic() + RAW_TIMEOUT
    if case.expect_body is not None and send_error is None:
        # RFC 9110 §10.1.1: a server MUST answer `Expect: 100-continue` with 100 or a final
        # status; a client may wait a while and then send the body regardless.
        try:
            first = await connection.response(time.monotonic() + EXPECT_WAIT)
        except asyncio.TimeoutError:
            outcome.problems.append(f"Expect: 100-continue not answered: no 100 Continue and no final status within {EXPECT_WAIT:.0f} s")
            first = None
        except (Incomplete, ConnectionError) as error:
            outcome.failure = _failure(error)
            return
        if first is not None and first.status == 100:
            outcome.interim.append(100)
            first = None
        if first is not None:
            outcome.answer = first
        else:
            send_error = await connection.send(case.expect_body)
            deadline = time.monotonic() + RAW_TIMEOUT
    if outcome.answer is None:
        try:
            if case.halfclose_after is not None:
                try:
                    answer = await connection.response(time.monotonic() + case.halfclose_after, head_request)
                except asyncio.TimeoutError:
                    try:
                        connection.writer.write_eof()
                    except (OSError, RuntimeError):
                        pass
                    answer = await connection.response(deadline, head_request)
            else:
                answer = await connection.response(deadline, head_request)
            while 100 <= answer.status < 200:
                outcome.interim.append(answer.status)
                answer = await connection.response(deadline, head_request)
            outcome.answer = answer
        except asyncio.TimeoutError:
            outcome.failure = f"timeout: no response within {RAW_TIMEOUT:.0f} s and the connection left open (hang)"
            return
        except (Incomplete, ConnectionError) as error:
            outcome.failure = _failure(error) + (f" ({send_error})" if send_error else "")
            return
    if case.must_close:
        # RFC 9112 §6.3 and §11.2: after a framing error (or both Content-Length and
        # Transfer-Encoding) the server must close, and must never answer what follows.
        try:
            extra = await connection.response(time.monotonic() + CLOSE_WAIT)
            outcome.problems.append(
                f"answered a second request smuggled behind the body: {extra.status} {excerpt(extra.body, 100)}"
            )
            outcome.closed_after = False
        except asyncio.TimeoutError:
            outcome.problems.append(f"connection left open {CLOSE_WAIT} s after a framing error (RFC 9112 §6.3: must close)")
            outcome.closed_after = False
        except (Incomplete, ConnectionError):
            outcome.closed_after = True


def _failure(error: Exception) -> str:
    if isinstance(error, ConnectionResetError):
        return "reset: the server reset the connection without a response"
    if isinstance(error, Incomplete) and str(error) == "closed":
        return "closed: the server closed the connection without a (complete) response"
    return f"error: {type(error).__name__}: {error}"


async def http_exchange(client: httpx.AsyncClient, base: str, case: Case) -> Outcome:
    started = time.monotonic()
    outcome = Outcome()
    try:
        request = client.build_request(case.method, base + case.path, headers=case.headers, content=case.body)
        response = await client.send(request)
        outcome.answer = Answer(response.status_code, response.reason_phrase,
                                [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers.raw],
                                response.content)
    except httpx.TimeoutException:
        outcome.failure = f"timeout: no response within {HTTP_TIMEOUT:.0f} s (hang)"
    except httpx.ConnectError as error:
        outcome.failure = f"refused ({error})"
    except httpx.RemoteProtocolError as error:
        outcome.failure = f"closed: {error}"
    except (httpx.ReadError, httpx.WriteError) as error:
        outcome.failure = f"reset: {type(error).__name__} {error}"
    except httpx.HTTPError as error:
        outcome.failure = f"error: {type(error).__name__}: {error}"
    outcome.elapsed = time.monotonic() - started
    return outcome


# MARK: - Checks


def error_shape_problems(answer: Answer) -> list[str]:
    """OpenAI's error shape: {"error": {"message": str, "type": str, "param": ..., "code": ...}}."""
    if not answer.body:
        return ["error response has no body (expected OpenAI-shaped JSON)"]
    problems = []
    content_type = (answer.header("content-type") or "").lower()
    if "json" not in content_type:
        problems.append(f"error response Content-Type is {content_type!r}, not JSON")
    try:
        document = json.loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        return problems + ["error body is not JSON"]
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return problems + ["error body has no 'error' object"]
    for key in ("message", "type"):
        if not isinstance(error.get(key), str):
            problems.append(f"error.{key} is not a string")
    for key in ("param", "code"):
        if key not in error:
            problems.append(f"error.{key} is missing (null is fine, absent is not)")
        elif error[key] is not None and not isinstance(error[key], str):
            problems.append(f"error.{key} is neither null nor a string")
    return problems


def describe_statuses(statuses: frozenset) -> str:
    if statuses == FOUR_XX:
        return "4xx"
    return "/".join(map(str, sorted(statuses)))


def check(case: Case, outcome: Outcome) -> list[str]:
    """Every problem with the server's answer to `case`; empty when it is right."""
    problems = list(outcome.problems)
    answer = outcome.answer
    if answer is None:
        if case.close_ok and (outcome.failure or "").startswith(("closed", "reset")):
            return problems
        return problems + [f"no response: {outcome.failure}"]
    status = answer.status
    problems += answer.notes
    if status >= 500 and status not in case.allowed_5xx:
        problems.append(f"5xx status {status}")
    if case.expect is not None and status not in case.expect and status not in case.allowed_5xx:
        problems.append(f"status {status}, expected {describe_statuses(case.expect)}")
    if not answer.header("x-request-id"):
        problems.append("no x-request-id header")
    is_head = case.method == "HEAD" or (case.raw or b"").startswith(b"HEAD ")
    # SwiftNIO's encoder writes every response to CONNECT without a body (a 2xx one turns
    # the connection into a tunnel, RFC 9112 §6.3); the status and the request id are the answer.
    is_connect = (case.raw or b"").startswith(b"CONNECT ")
    if not (200 <= status < 300) and status not in (304,) and not is_head and not is_connect:
        problems += error_shape_problems(answer)
    if case.code is not None and status >= 400 and not is_head:
        try:
            code = json.loads(answer.body)["error"]["code"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            code = None
        if code != case.code:
            problems.append(f"error.code {code!r}, expected {case.code!r}")
    if status == 405 and not answer.header("allow"):
        problems.append("405 without an Allow header (RFC 9110 §15.5.6: MUST)")
    return problems


# MARK: - The deployment


class HostileDeployment:
    """The simulator and `switchyard serve --max-body-bytes 65536`, restartable on the same
    database after a crash."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.database = directory / "switchyard.sqlite"
        self.serve: Optional[subprocess.Popen] = None
        self.sim: Optional[subprocess.Popen] = None
        self.generation = 0
        self.port = 0
        self.logs: list[Path] = []
        engine_port = free_port()
        self.sim = subprocess.Popen(
            [binary(), "sim-engine", "--port", str(engine_port), "--ttft-ms", "0", "--tokens-per-second", "0",
             "--slots", "16"],
            stdout=subprocess.DEVNULL, stderr=open(directory / "sim.log", "w"),
        )
        self.engine = f"http://127.0.0.1:{engine_port}"
        wait_for(self.engine + "/health", self.sim)
        config = json.loads((REPO / "providers.json").read_text())
        for pool in config["engine_pools"]:
            for replica in pool["replicas"]:
                replica["url"] = f"{self.engine}/v1"
        # The OpenAI-kind provider talks to the simulator too, so that a provider key the
        # corpus adds makes its models servable by a healthy upstream, not an unreachable one.
        for provider in config["providers"]:
            if provider["kind"] == "openai":
                provider["base_url"] = f"{self.engine}/v1"
        (directory / "providers.json").write_text(json.dumps(config))
        self.start_serve()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_serve(self, *, backtrace: bool = False) -> None:
        self.generation += 1
        self.port = free_port()
        environment = {
            key: value for key, value in os.environ.items()
            if key not in {"OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"}
        }
        environment.update({
            "SWITCHYARD_CONFIG": str(self.directory / "providers.json"),
            "SWITCHYARD_DB": str(self.database),
            "SWITCHYARD_PORT": str(self.port),
            "SWITCHYARD_ADMIN_TOKEN": ADMIN_TOKEN,
            "SWITCHYARD_BCRYPT_COST": BCRYPT_COST,
            # A crash should end the process at once (the runner notices and restarts it);
            # the backtrace is taken separately, once, by `backtrace_for`.
            "SWIFT_BACKTRACE": "enable=yes,interactive=no,symbolicate=full,threads=crashed,images=none"
            if backtrace else "enable=no",
        })
        log = self.directory / f"serve-{self.generation}.log"
        self.logs.append(log)
        self.serve = subprocess.Popen(
            [binary(), "serve", "--grace-period", "5", "--max-body-bytes", str(MAX_BODY_BYTES)],
            env=environment, stdout=open(self.directory / f"serve-{self.generation}.out", "w"), stderr=open(log, "w"),
        )
        wait_for(self.proxy + "/health", self.serve)

    def restart(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            stop(self.serve)
        self.start_serve()

    def log_tail(self, lines: int = 12) -> str:
        if not self.logs or not self.logs[-1].exists():
            return ""
        text = self.logs[-1].read_text(errors="replace").splitlines()
        interesting = [line for line in text if any(word in line.lower() for word in ("fatal", "crash", "runtime failure"))]
        return "\n".join(interesting[-lines:])

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.serve.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.serve.pid}/fd"))

    def cli_json(self, *args: str) -> dict:
        result = subprocess.run(
            [binary(), *args, "--server", self.proxy, "--token", ADMIN_TOKEN, "--json"],
            capture_output=True, text=True, check=True, timeout=60,
        )
        return json.loads(result.stdout)

    def close(self) -> None:
        for process in (self.serve, self.sim):
            if process is not None:
                stop(process)


def make_context(deployment: HostileDeployment) -> Context:
    """Tenants and keys through the CLI (as test_openai_sdk.make_tenant does), provider keys
    through the API."""

    def tenant(name: str, tier: str) -> tuple[str, str, str]:
        made = deployment.cli_json("tenant", "create", "--name", name, "--tier", tier)
        key = tenant_key(deployment.proxy, made["id"], "hostile-app")
        return made["id"], key["id"], key["key"]

    main_id, _, main_key = tenant("hostile-main", "enterprise")
    limited_id, _, limited_key = tenant("hostile-limited", "professional")
    victim_id, victim_key_id, _ = tenant("hostile-victim", "standard")
    other_id, revoked_id, revoked_key = tenant("hostile-other", "enterprise")
    deployment.cli_json("key", "revoke", revoked_id)
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    provider_keys = []
    for label in ("hostile-setup", "hostile-retire"):
        response = httpx.post(deployment.proxy + "/admin/v1/provider-keys", headers=admin, timeout=10,
                              json={"provider": "openai", "key": f"sk-{label}-0123456789", "label": label})
        response.raise_for_status()
        provider_keys.append(response.json()["id"])
    # The org admin first (it invites nobody here, but keys need it), then an org user to
    # sign in as and an open invite for the accept case.
    org_admin = org_admin_session(deployment.proxy, victim_id)
    login = invite_user(deployment.proxy, victim_id, "org_user", email="hostile-login@hostile.example",
                        name="Hostile Login", password=ORG_ADMIN_PASSWORD)
    response = httpx.post(deployment.proxy + f"/admin/v1/tenants/{victim_id}/invites", headers=admin, timeout=10,
                          json={"email": "hostile-accept@hostile.example", "role": "org_user"})
    response.raise_for_status()
    return Context(
        tenant_id=main_id, tenant_name="hostile-main", key=main_key, limited_tenant_id=limited_id,
        limited_key=limited_key, victim_tenant_id=victim_id, victim_key_id=victim_key_id, other_tenant_id=other_id,
        revoked_key=revoked_key, provider_key_id=provider_keys[0], retire_key_id=provider_keys[1],
        org_admin_token=org_admin, login_email=login["user"]["email"], login_password=ORG_ADMIN_PASSWORD,
        invite_token=response.json()["token"],
    )


# MARK: - The runner


@dataclass
class Result:
    case: Case
    outcome: Outcome
    problems: list
    pass_name: str


@dataclass
class Crash:
    case: Optional[Case]
    pass_name: str
    returncode: Optional[int]
    log: str
    in_flight: list
    # "died", or "stopped answering" when serve was alive but /health no longer answered
    # and the runner killed it.
    how: str = "died"


class Runner:
    """Runs cases concurrently; when serve dies, restarts it, finds the case(s) that
    killed it by running the suspects one at a time, and goes on."""

    def __init__(self, deployment: HostileDeployment, concurrency: int = 32):
        self.deployment = deployment
        self.concurrency = concurrency
        self.crashes: list[Crash] = []
        self.restarts = 0
        # Set when the runner killed a serve that no longer answered /health.
        self.killed_wedged = False
        self.client = httpx.AsyncClient(
            http1=True, http2=False, timeout=HTTP_TIMEOUT, follow_redirects=False,
            # A fresh connection per case: a reused connection the server closed while idle
            # must never pass for the server hanging up on a request.
            limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=0),
            # No cookie jar: the session cookie a sign-in sets must not ride along on every
            # later case (a case sends its own Cookie header when it means to).
            cookies=http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def dead(self) -> bool:
        return self.deployment.serve.poll() is not None

    async def died_soon(self, within: float = 0.3) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.dead():
                return True
            await asyncio.sleep(0.02)
        return self.dead()

    async def execute(self, case: Case) -> Outcome:
        if case.raw is not None:
            return await raw_exchange("127.0.0.1", self.deployment.port, case)
        return await http_exchange(self.client, self.deployment.proxy, case)

    def restart(self) -> None:
        self.restarts += 1
        self.killed_wedged = False
        self.deployment.restart()

    async def healthy(self) -> bool:
        """Whether /health answers 200 within 3 s on a fresh connection."""
        probe = Case("health", "probe", "liveness probe", "GET", "/health",
                     raw=b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        try:
            outcome = await asyncio.wait_for(raw_exchange("127.0.0.1", self.deployment.port, probe), 3.0)
        except asyncio.TimeoutError:
            return False
        return outcome.answer is not None and outcome.answer.status == 200

    def kill_wedged(self) -> None:
        """serve is alive but answers nothing: kill it, so the crash path takes over."""
        self.killed_wedged = True
        self.deployment.serve.kill()
        self.deployment.serve.wait()

    async def run(self, cases: list[Case], pass_name: str) -> dict[str, Result]:
        # The corpus ends with the slow raw shapes; interleaving them keeps the workers busy.
        order = list(cases)
        random.Random(SEED).shuffle(order)
        pending = deque(order)
        results: dict[str, Result] = {}
        while pending:
            suspects, in_flight_at_death = await self._concurrently(pending, results, pass_name)
            if not self.dead():
                continue
            returncode = self.deployment.serve.returncode
            log = self.deployment.log_tail()
            wedged = self.killed_wedged
            self.restart()
            # The cases that got no answer when serve died, one at a time (the quick ones
            # first) until one kills it again; the rest go back to the queue.
            suspects.sort(key=lambda case: case.transport == "raw")
            for index, case in enumerate(suspects):
                outcome = await self.execute(case)
                if outcome.answer is None and not self.dead() and (outcome.failure or "").startswith("timeout") \
                        and not await self.healthy():
                    self.kill_wedged()
                if outcome.answer is None and await self.died_soon():
                    code = self.deployment.serve.returncode
                    how = "stopped answering" if self.killed_wedged else "died"
                    self.crashes.append(Crash(case, pass_name, code, self.deployment.log_tail(), [], how))
                    problems = [f"serve {how} on this case (exit status {code}); restarted"]
                    results[case.id] = Result(case, outcome, problems, pass_name)
                    self.restart()
                    pending.extendleft(reversed(suspects[index + 1:]))
                    break
                results[case.id] = Result(case, outcome, check(case, outcome), pass_name)
            else:
                how = "stopped answering" if wedged else "died"
                self.crashes.append(Crash(None, pass_name, returncode, log, in_flight_at_death, how))
        return results

    async def _concurrently(self, pending: deque, results: dict, pass_name: str) -> tuple[list, list]:
        crashed = asyncio.Event()
        suspects: list[Case] = []
        in_flight: dict[str, Case] = {}
        in_flight_at_death: list[str] = []

        async def watchdog():
            while not crashed.is_set():
                if self.dead():
                    in_flight_at_death.extend(in_flight)
                    crashed.set()
                    return
                await asyncio.sleep(0.02)

        async def liveness():
            # A serve that is alive but answers nothing (a deadlock, a spin) would make
            # every case time out: after two failed probes in a row it is killed, and the
            # cases in flight are suspects as for a crash.
            failures = 0
            while not crashed.is_set():
                await asyncio.sleep(1.0)
                if crashed.is_set() or self.dead():
                    return
                failures = 0 if await self.healthy() else failures + 1
                if failures >= 2 and not self.dead():
                    self.kill_wedged()
                    return

        async def worker():
            while pending and not crashed.is_set():
                case = pending.popleft()
                in_flight[case.id] = case
                outcome = await self.execute(case)
                del in_flight[case.id]
                if outcome.answer is None and (crashed.is_set() or await self.died_soon()):
                    crashed.set()
                    suspects.append(case)
                else:
                    results[case.id] = Result(case, outcome, check(case, outcome), pass_name)

        watch = asyncio.create_task(watchdog())
        live = asyncio.create_task(liveness())
        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        crashed.set()
        await watch
        live.cancel()
        try:
            await live
        except asyncio.CancelledError:
            pass
        return suspects, in_flight_at_death


async def backtrace_for(deployment: HostileDeployment, case: Case) -> str:
    """Runs one crashing case on a serve with the Swift backtracer on and returns the
    crash's headline and Switchyard frames."""
    if deployment.serve.poll() is None:
        stop(deployment.serve)
    deployment.start_serve(backtrace=True)
    async with httpx.AsyncClient(timeout=60) as client:
        if case.raw is not None:
            await raw_exchange("127.0.0.1", deployment.port, case)
        else:
            await http_exchange(client, deployment.proxy, case)
    for _ in range(600):
        if deployment.serve.poll() is not None:
            break
        await asyncio.sleep(0.05)
    text = deployment.logs[-1].read_text(errors="replace").splitlines()
    picked = [line for line in text if "runtime failure" in line.lower() or "fatal error" in line.lower()
              or "crashed" in line.lower() or line.lstrip().startswith("0 ")
              or ("/Sources/" in line and ".build" not in line)]
    deployment.restart()
    return "\n".join(line.strip()[:220] for line in picked[:12])


def describe_failure(result: Result) -> str:
    answer = result.outcome.answer
    lines = [f"{result.case.label()}", f"    problems: {'; '.join(result.problems)}"]
    if answer is not None:
        lines.append(f"    got: {answer.status} {answer.reason}; x-request-id={answer.header('x-request-id')!r}; "
                     f"body {excerpt(answer.body, 200)}")
    if result.outcome.interim:
        lines.append(f"    interim: {result.outcome.interim}")
    return "\n".join(lines)


def problem_kind(problem: str) -> str:
    """What a problem is about, without the values: two passes that got different wrong
    statuses for a case have the same kind of problem."""
    problem = problem.split(") ", 1)[1] if problem.startswith("(") else problem
    if problem.startswith(("status ", "5xx status")):
        return "status"
    return problem.split(":")[0]


def summarize(failures: list[Result]) -> str:
    """Failures grouped by their kind of problem, most common first."""
    groups = Counter()
    for failure in failures:
        for problem in failure.problems:
            summary = problem
            if problem.startswith("status "):
                summary = "status " + problem.split(",", 1)[0].split()[1] + " (" + problem.split(", ", 1)[1] + ")"
            groups[summary] += 1
    return "\n".join(f"  {count:5d} × {problem}" for problem, count in groups.most_common())
