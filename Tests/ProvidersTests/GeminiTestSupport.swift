import Foundation
import NIOCore
import Testing

@testable import Providers

// MARK: Recordings

/// The recorded Gemini traffic in `../shared/fixtures/gemini`, read independently of the
/// code under test (Foundation for JSON, plain line splitting for SSE).
enum GeminiRecordings {
    /// Every recorded `streamGenerateContent?alt=sse` body, as the bytes Gemini sent:
    /// raw `.sse` files, `.chunks.txt` files with their framing rebuilt, and the body of
    /// the recorded 200 stream response.
    static let streamNames: [String] = {
        let sse = (try? Fixtures.files(in: "gemini/sse", withExtension: "sse")) ?? []
        let chunks = (try? Fixtures.files(in: "gemini/chunks", withExtension: "chunks.txt")) ?? []
        return sse + chunks + ["gemini/http/200-stream-headers.newrelic.http"]
    }()

    static let jsonNames: [String] = (try? Fixtures.files(in: "gemini/json", withExtension: "json")) ?? []

    static func streamBytes(_ name: String) throws -> [UInt8] {
        if name.hasSuffix(".chunks.txt") {
            // The recorder kept one event per line; Gemini frames each with CRLF.
            let lines = String(decoding: try Fixtures.bytes(name), as: UTF8.self).split(separator: "\n")
            return Array(lines.filter { !$0.isEmpty }.map { "data: \($0)\r\n\r\n" }.joined().utf8)
        }
        if name.hasSuffix(".http") { return try Fixtures.httpBody(name) }
        return try Fixtures.bytes(name)
    }

    /// The JSON of each `data:` line of a Gemini stream. Split as bytes: a Swift string
    /// holds CRLF as one character, which a split on LF would not see.
    static func events(_ bytes: [UInt8]) throws -> [[String: Any]] {
        try bytes.split(separator: 0x0A).compactMap { line -> [String: Any]? in
            let line = line.last == 0x0D ? line.dropLast() : line
            guard line.starts(with: Array("data:".utf8)) else { return nil }
            return try foundationObject(Array(line.dropFirst(5)))
        }
    }
}

// MARK: What an answer said

/// What an answer says, in terms both formats share: compared between a Gemini recording
/// and Switchyard's OpenAI translation of it.
struct AnswerSummary: Equatable, CustomStringConvertible {
    var content = ""
    /// Tool calls as `name(arguments)`, arguments re-serialised with sorted keys so equal
    /// JSON compares equal.
    var toolCalls: [String] = []
    var finishReason: String?
    var usage: TokenUsage?

    var description: String {
        "content: \(content.debugDescription), tools: \(toolCalls), finish: \(finishReason ?? "nil"), usage: \(String(describing: usage))"
    }

    static func call(name: String, arguments: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: arguments, options: [.sortedKeys, .fragmentsAllowed])
        return "\(name)(\(String(decoding: data, as: UTF8.self)))"
    }

    /// What a sequence of Gemini `GenerateContentResponse` objects says.
    static func gemini(_ events: [[String: Any]]) throws -> AnswerSummary {
        var summary = AnswerSummary()
        var geminiFinish: String?
        var blocked = false
        for event in events {
            let candidate = (event["candidates"] as? [[String: Any]])?.first
            let content = candidate?["content"] as? [String: Any]
            for part in content?["parts"] as? [[String: Any]] ?? [] where part["thought"] as? Bool != true {
                summary.content += part["text"] as? String ?? ""
                if let call = part["functionCall"] as? [String: Any] {
                    summary.toolCalls.append(try Self.call(name: call["name"] as? String ?? "", arguments: call["args"] ?? [:]))
                }
            }
            if let reason = candidate?["finishReason"] as? String { geminiFinish = reason }
            if (event["promptFeedback"] as? [String: Any])?["blockReason"] != nil { blocked = true }
            if let usage = event["usageMetadata"] as? [String: Any] { summary.usage = Self.usage(usage) }
        }
        summary.finishReason = blocked ? "content_filter" : geminiFinish.map { Self.finishReasons[$0] ?? "stop" }
        if summary.finishReason == "stop", !summary.toolCalls.isEmpty { summary.finishReason = "tool_calls" }
        return summary
    }

    /// Gemini's finish reasons as OpenAI names them (the table the adapter must follow).
    static let finishReasons: [String: String] = [
        "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
        "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
        "IMAGE_SAFETY": "content_filter", "LANGUAGE": "content_filter", "MALFORMED_FUNCTION_CALL": "stop", "OTHER": "stop",
    ]

    static func usage(_ metadata: [String: Any]) -> TokenUsage {
        let thoughts = metadata["thoughtsTokenCount"] as? Int ?? 0
        return TokenUsage(
            promptTokens: (metadata["promptTokenCount"] as? Int ?? 0) + (metadata["toolUsePromptTokenCount"] as? Int ?? 0),
            cachedPromptTokens: metadata["cachedContentTokenCount"] as? Int ?? 0,
            completionTokens: (metadata["candidatesTokenCount"] as? Int ?? 0) + thoughts,
            reasoningTokens: thoughts
        )
    }

    /// OpenAI's usage object as a `TokenUsage`.
    static func openAIUsage(_ usage: [String: Any]) -> TokenUsage {
        let prompt = usage["prompt_tokens_details"] as? [String: Any] ?? [:]
        let completion = usage["completion_tokens_details"] as? [String: Any] ?? [:]
        return TokenUsage(
            promptTokens: usage["prompt_tokens"] as? Int ?? -1,
            cachedPromptTokens: prompt["cached_tokens"] as? Int ?? -1,
            completionTokens: usage["completion_tokens"] as? Int ?? -1,
            reasoningTokens: completion["reasoning_tokens"] as? Int ?? -1
        )
    }

    /// What an OpenAI `chat.completion` says.
    static func openAICompletion(_ completion: [String: Any]) throws -> AnswerSummary {
        let choice = try #require((completion["choices"] as? [[String: Any]])?.first)
        let message = try #require(choice["message"] as? [String: Any])
        var summary = AnswerSummary(content: message["content"] as? String ?? "", finishReason: choice["finish_reason"] as? String)
        for call in message["tool_calls"] as? [[String: Any]] ?? [] {
            summary.toolCalls.append(try Self.toolCall(call))
        }
        summary.usage = (completion["usage"] as? [String: Any]).map(Self.openAIUsage)
        return summary
    }

    /// What a stream of OpenAI chunk objects says.
    static func openAIChunks(_ chunks: [[String: Any]]) throws -> AnswerSummary {
        var summary = AnswerSummary()
        for chunk in chunks {
            for choice in chunk["choices"] as? [[String: Any]] ?? [] {
                let delta = choice["delta"] as? [String: Any] ?? [:]
                summary.content += delta["content"] as? String ?? ""
                for call in delta["tool_calls"] as? [[String: Any]] ?? [] {
                    summary.toolCalls.append(try Self.toolCall(call))
                }
                if let reason = choice["finish_reason"] as? String { summary.finishReason = reason }
            }
            if let usage = chunk["usage"] as? [String: Any] { summary.usage = Self.openAIUsage(usage) }
        }
        return summary
    }

    private static func toolCall(_ call: [String: Any]) throws -> String {
        let function = try #require(call["function"] as? [String: Any])
        let arguments = try #require(function["arguments"] as? String)
        return try Self.call(name: function["name"] as? String ?? "", arguments: try foundationJSON(Array(arguments.utf8)))
    }
}

// MARK: OpenAI output

/// The `data:` payloads of an OpenAI SSE byte stream (Switchyard writes `\n\n` framing).
func openAIEventPayloads(_ bytes: [UInt8]) -> [String] {
    String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
        event.hasPrefix("data: ") ? String(event.dropFirst(6)) : "<not a data event: \(event)>"
    }
}

// MARK: Driving the adapter

enum GeminiHarness {
    static let endpoint = ProviderEndpoint(
        kind: .gemini, baseURL: "https://generativelanguage.googleapis.com/v1beta", apiKey: "test-provider-key"
    )
    static let labels = ResponseLabels(id: "chatcmpl-req_test", created: 1_700_000_000, model: "chat-large")

    static func head(_ json: String, endpoint: InferenceEndpoint = .chatCompletions) throws -> InferenceRequestHead {
        var buffer = ByteBuffer()
        buffer.writeString(json)
        return try InferenceRequestHead.parse(buffer, endpoint: endpoint)
    }

    /// Translates a request body; the upstream request or the refusal.
    static func request(
        _ json: String, endpoint: InferenceEndpoint = .chatCompletions, model: String = "gemini-2.5-flash"
    ) throws -> Result<UpstreamRequest, OpenAIError> {
        let head = try head(json, endpoint: endpoint)
        var body = ByteBuffer()
        body.writeString(json)
        do {
            return .success(try GeminiAdapter().makeRequest(
                head: head, body: body, deployment: DeploymentSettings(upstreamModel: model), endpoint: GeminiHarness.endpoint
            ))
        } catch {
            return .failure(error)
        }
    }

    /// The JSON body Gemini would get for an OpenAI request.
    static func geminiBody(_ json: String) throws -> [String: Any] {
        try foundationObject(try request(json).get().body)
    }

    /// The refusal of a request that must be refused.
    static func refusal(_ json: String, endpoint: InferenceEndpoint = .chatCompletions) throws -> OpenAIError {
        switch try request(json, endpoint: endpoint) {
        case .success(let request):
            Issue.record("expected a refusal, got a request to \(request.url)")
            return OpenAIError(status: 0, message: "", type: "")
        case .failure(let error):
            return error
        }
    }

    /// Translates a stream delivered in `chunks`; the client's bytes and the translator.
    static func stream(_ chunks: [[UInt8]], clientWantsUsage: Bool = true) -> (output: [UInt8], translator: GeminiStreamTranslator) {
        var translator = GeminiStreamTranslator(labels: labels, clientWantsUsage: clientWantsUsage)
        var output: [UInt8] = []
        for chunk in chunks {
            var buffer = ByteBuffer()
            buffer.writeBytes(chunk)
            output += bytes(translator.translate(buffer))
        }
        output += bytes(translator.finish())
        return (output, translator)
    }

    static func stream(_ text: String, clientWantsUsage: Bool = true) -> (output: String, translator: GeminiStreamTranslator) {
        let (output, translator) = stream([Array(text.utf8)], clientWantsUsage: clientWantsUsage)
        return (String(decoding: output, as: UTF8.self), translator)
    }

    static func body(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString(text)
        return buffer
    }
}
