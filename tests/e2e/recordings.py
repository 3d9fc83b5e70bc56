"""What each recording holds, read straight from the recorded provider events: the
expected content, tool calls, finish reason and usage after translation to OpenAI."""

from __future__ import annotations

import json

ANTHROPIC_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                    "refusal": "content_filter", "pause_turn": "stop"}
GEMINI_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
                 "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter"}


def sse_payloads(body: bytes) -> list:
    """The JSON payloads of an SSE body's data lines (one line per event in these recordings)."""
    payloads = []
    for line in body.decode().replace("\r\n", "\n").split("\n"):
        if line.startswith("data:"):
            data = line[5:].strip()
            if data and data != "[DONE]":
                payloads.append(json.loads(data))
    return payloads


def expected_anthropic_stream(body: bytes) -> dict:
    text, tools, arguments, finish, usage = "", [], {}, None, {}
    block_tool = {}
    for event in sse_payloads(body):
        kind = event.get("type")
        if kind == "message_start":
            usage.update(event["message"].get("usage") or {})
        elif kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block_tool[event["index"]] = len(tools)
            tools.append(event["content_block"]["name"])
            arguments[len(tools) - 1] = ""
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                text += delta["text"]
            elif delta["type"] == "input_json_delta":
                arguments[block_tool[event["index"]]] += delta["partial_json"]
        elif kind == "message_delta":
            finish = ANTHROPIC_FINISH[event["delta"]["stop_reason"]]
            usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
    return {
        "content": text, "tools": tools,
        "arguments": [json.loads(arguments[i] or "{}") for i in range(len(tools))],
        "finish": finish, "usage": anthropic_usage(usage),
    }


def expected_anthropic_json(body: bytes) -> dict:
    message = json.loads(body)
    texts = [block["text"] for block in message["content"] if block["type"] == "text"]
    tools = [block for block in message["content"] if block["type"] == "tool_use"]
    return {
        "content": "".join(texts) if texts else None, "tools": [t["name"] for t in tools],
        "arguments": [t["input"] for t in tools], "finish": ANTHROPIC_FINISH[message["stop_reason"]],
        "usage": anthropic_usage(message["usage"]),
    }


def anthropic_usage(usage: dict) -> dict:
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = usage.get("input_tokens", 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": usage.get("output_tokens", 0), "cached_tokens": cached}


def gemini_parts(response: dict) -> list:
    candidates = response.get("candidates") or [{}]
    return (candidates[0].get("content") or {}).get("parts") or []


def expected_gemini(responses: list, stream: bool = False) -> dict:
    text, tools, arguments, reason, usage = "", [], [], None, {}
    for response in responses:
        for part in gemini_parts(response):
            if "text" in part and not part.get("thought"):
                text += part["text"]
            if "functionCall" in part:
                tools.append(part["functionCall"]["name"])
                arguments.append(part["functionCall"].get("args") or {})
        candidates = response.get("candidates") or [{}]
        reason = candidates[0].get("finishReason") or reason
        usage = response.get("usageMetadata") or usage
    finish = GEMINI_FINISH[reason]
    if tools and finish == "stop":
        finish = "tool_calls"
    return {
        # A stream's content accumulates to "" without text; a whole answer's is null.
        "content": text if text or stream or not tools else None, "tools": tools, "arguments": arguments, "finish": finish,
        "usage": {
            "prompt_tokens": usage.get("promptTokenCount", 0),
            "completion_tokens": usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0),
            "cached_tokens": usage.get("cachedContentTokenCount", 0),
        },
    }


def expected_openai_stream(body: bytes) -> dict:
    text, calls, finish, usage = "", {}, None, None
    for chunk in sse_payloads(body):
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                function = call.get("function") or {}
                entry["name"] += function.get("name") or ""
                entry["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
        if chunk.get("usage"):
            usage = chunk["usage"]
    ordered = [calls[i] for i in sorted(calls)]
    return {
        "content": text, "tools": [c["name"] for c in ordered],
        "arguments": [json.loads(c["arguments"] or "{}") for c in ordered], "finish": finish,
        "usage": None if usage is None else {
            "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        },
    }


def expected_openai_json(body: bytes) -> dict:
    answer = json.loads(body)
    choice = answer["choices"][0]
    message = choice["message"]
    calls = message.get("tool_calls") or []
    usage = answer.get("usage") or {}
    return {
        "content": message.get("content"), "tools": [c["function"]["name"] for c in calls],
        "arguments": [json.loads(c["function"]["arguments"] or "{}") for c in calls], "finish": choice["finish_reason"],
        "usage": {"prompt_tokens": usage.get("prompt_tokens", 0), "completion_tokens": usage.get("completion_tokens", 0),
                  "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)},
    }


def engine_normalised(expected: dict) -> dict:
    """What Switchyard makes of an engine's answer: tool calls that end in `stop` (or
    without a finish reason) end in `tool_calls`."""
    if expected["tools"] and expected["finish"] in (None, "stop"):
        expected = {**expected, "finish": "tool_calls"}
    return expected
