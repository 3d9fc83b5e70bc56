import Foundation
import NIOCore
import Testing

@testable import Providers

// MARK: Recordings

/// One recorded Anthropic answer and where it came from.
struct AnthropicRecording: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]

    var testDescription: String { name }
}

/// The Anthropic recordings in `../shared/fixtures/anthropic`, in the shapes the adapter
/// reads: raw SSE bodies and JSON bodies. Read once, by file kind.
enum AnthropicFixtures {
    /// Every recorded stream: `sse/*.sse` as is; `chunks/*.chunks.txt` with the framing
    /// the recorder stripped put back; the SSE bodies inside `recorded/*.json`; and the
    /// literal-block bodies of `cassettes/*.yaml`.
    static func streams() throws -> [AnthropicRecording] {
        var recordings: [AnthropicRecording] = []
        for path in try Fixtures.files(in: "anthropic/sse", withExtension: "sse") {
            recordings.append(AnthropicRecording(name: path, bytes: try Fixtures.bytes(path)))
        }
        for path in try Fixtures.files(in: "anthropic/chunks", withExtension: "chunks.txt") {
            recordings.append(AnthropicRecording(name: path, bytes: try framedChunks(path)))
        }
        for path in try Fixtures.files(in: "anthropic/recorded", withExtension: "json") {
            for (index, exchange) in try exchanges(path).enumerated() {
                guard let response = exchange["response"] as? [String: Any], let body = response["body"] as? String else { continue }
                recordings.append(AnthropicRecording(name: "\(path)[\(index)]", bytes: Array(body.utf8)))
            }
        }
        for path in try Fixtures.files(in: "anthropic/cassettes", withExtension: "yaml") {
            for (index, body) in try literalBodies(path).enumerated() {
                recordings.append(AnthropicRecording(name: "\(path)[\(index)]", bytes: Array(body.utf8)))
            }
        }
        return recordings
    }

    /// Every recorded successful non-streaming answer: `json/*.json` and the 200 JSON
    /// bodies of `recorded/*.json` (re-serialised from the exchange list). The cassettes'
    /// JSON bodies are stored as parsed YAML, which these tests do not parse.
    static func messages() throws -> [AnthropicRecording] {
        var recordings: [AnthropicRecording] = []
        for path in try Fixtures.files(in: "anthropic/json", withExtension: "json") {
            recordings.append(AnthropicRecording(name: path, bytes: try Fixtures.bytes(path)))
        }
        for path in try Fixtures.files(in: "anthropic/recorded", withExtension: "json") {
            for (index, exchange) in try exchanges(path).enumerated() {
                guard let response = exchange["response"] as? [String: Any],
                      response["status_code"] as? Int == 200,
                      let body = response["body"] as? [String: Any]
                else { continue }
                let data = try JSONSerialization.data(withJSONObject: body)
                recordings.append(AnthropicRecording(name: "\(path)[\(index)]", bytes: Array(data)))
            }
        }
        return recordings
    }

    /// The request/response list of an anthropic-sdk-python inline snapshot.
    static func exchanges(_ path: String) throws -> [[String: Any]] {
        try #require(try foundationJSON(try Fixtures.bytes(path)) as? [[String: Any]])
    }

    /// One event JSON per line becomes `event: <type>\ndata: <json>\n\n`.
    static func framedChunks(_ path: String) throws -> [UInt8] {
        let text = String(decoding: try Fixtures.bytes(path), as: UTF8.self)
        var framed = ""
        for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            let event = try foundationObject(Array(line.utf8))
            let type = try #require(event["type"] as? String)
            framed += "event: \(type)\ndata: \(line)\n\n"
        }
        return Array(framed.utf8)
    }

    /// The `string: |+` / `string: |` literal blocks of a VCR cassette: the lines indented
    /// deeper than the key, with that indentation removed. Enough for raw SSE bodies.
    static func literalBodies(_ path: String) throws -> [String] {
        let lines = String(decoding: try Fixtures.bytes(path), as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: false)
        var bodies: [String] = []
        var index = 0
        while index < lines.count {
            let trimmed = lines[index].drop { $0 == " " }
            let keyIndent = lines[index].count - trimmed.count
            index += 1
            guard trimmed == "string: |+" || trimmed == "string: |" else { continue }
            var body = ""
            var blockIndent: Int?
            while index < lines.count {
                let line = lines[index]
                let indent = line.prefix { $0 == " " }.count
                if line.allSatisfy({ $0 == " " }) {
                    body += "\n"
                } else if indent > keyIndent, indent >= (blockIndent ?? indent) {
                    blockIndent = blockIndent ?? indent
                    body += line.dropFirst(blockIndent!) + "\n"
                } else {
                    break
                }
                index += 1
            }
            bodies.append(body)
        }
        return bodies
    }
}

// MARK: What a recording holds

/// What an Anthropic answer says, read straight from its events or body with Foundation,
/// independently of the adapter.
struct AnthropicExpectation {
    struct Call: Equatable {
        var id: String
        var name: String
        /// The arguments as canonical JSON text (sorted keys).
        var arguments: String
    }

    var content: String?
    var calls: [Call] = []
    var finishReason: String
    var usage: TokenUsage?
    var model: String?

    /// OpenAI's `finish_reason` for each Anthropic `stop_reason` (messages-create.md).
    static let finishReasons: [String: String] = [
        "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
        "tool_use": "tool_calls", "refusal": "content_filter",
    ]

    /// The data of each event of a recorded Anthropic stream (each is one `data:` line).
    static func events(_ bytes: [UInt8]) throws -> [[String: Any]] {
        try String(decoding: bytes, as: UTF8.self)
            .split(separator: "\n")
            .filter { $0.hasPrefix("data:") }
            .map { try foundationObject(Array($0.dropFirst(5).utf8)) }
    }

    /// What a recorded stream says: text deltas, tool calls, stop reason and usage.
    init(stream bytes: [UInt8]) throws {
        var text: String?
        var blockKinds: [Int: String] = [:]
        var arguments: [Int: String] = [:]
        var calls: [(block: Int, id: String, name: String)] = []
        var stopReason: String?
        var usage: [String: Any] = [:]
        for event in try Self.events(bytes) {
            let index = event["index"] as? Int ?? -1
            switch event["type"] as? String {
            case "message_start":
                let message = event["message"] as? [String: Any] ?? [:]
                model = message["model"] as? String
                usage.merge(message["usage"] as? [String: Any] ?? [:]) { $1 }
            case "content_block_start":
                let block = event["content_block"] as? [String: Any] ?? [:]
                blockKinds[index] = block["type"] as? String
                if block["type"] as? String == "tool_use" {
                    calls.append((index, block["id"] as? String ?? "", block["name"] as? String ?? ""))
                }
            case "content_block_delta":
                let delta = event["delta"] as? [String: Any] ?? [:]
                if blockKinds[index] == "text", let piece = delta["text"] as? String {
                    text = (text ?? "") + piece
                }
                if blockKinds[index] == "tool_use", let piece = delta["partial_json"] as? String {
                    arguments[index, default: ""] += piece
                }
            case "message_delta":
                stopReason = (event["delta"] as? [String: Any])?["stop_reason"] as? String ?? stopReason
                usage.merge(event["usage"] as? [String: Any] ?? [:]) { $1 }
            default:
                break
            }
        }
        content = text
        self.calls = try calls.map { call in
            let json = arguments[call.block].flatMap { $0.isEmpty ? nil : $0 } ?? "{}"
            return Call(id: call.id, name: call.name, arguments: try canonicalJSON(Array(json.utf8)))
        }
        let reason = try #require(stopReason)
        finishReason = try #require(Self.finishReasons[reason])
        self.usage = Self.usage(usage)
    }

    /// What a recorded non-streaming answer says.
    init(message bytes: [UInt8]) throws {
        let message = try foundationObject(bytes)
        var text: String?
        for block in message["content"] as? [[String: Any]] ?? [] {
            switch block["type"] as? String {
            case "text":
                text = (text ?? "") + (block["text"] as? String ?? "")
            case "tool_use":
                let input = try JSONSerialization.data(withJSONObject: block["input"] ?? [:])
                calls.append(Call(
                    id: block["id"] as? String ?? "",
                    name: block["name"] as? String ?? "",
                    arguments: try canonicalJSON(Array(input))
                ))
            default:
                break
            }
        }
        content = text
        let reason = try #require(message["stop_reason"] as? String)
        finishReason = try #require(Self.finishReasons[reason])
        usage = Self.usage(message["usage"] as? [String: Any] ?? [:])
        model = message["model"] as? String
    }

    private static func usage(_ usage: [String: Any]) -> TokenUsage? {
        guard let input = usage["input_tokens"] as? Int else { return nil }
        let cacheRead = usage["cache_read_input_tokens"] as? Int ?? 0
        let cacheCreation = usage["cache_creation_input_tokens"] as? Int ?? 0
        return TokenUsage(
            promptTokens: input + cacheRead + cacheCreation,
            cachedPromptTokens: cacheRead,
            completionTokens: usage["output_tokens"] as? Int ?? 0
        )
    }
}

/// JSON text re-serialised with sorted keys, to compare documents rather than spellings.
func canonicalJSON(_ bytes: [UInt8]) throws -> String {
    let value = try foundationJSON(bytes)
    let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}

// MARK: Reading what the client gets

/// An OpenAI stream as the client sees it: its events, in order.
struct OpenAIStreamOutput {
    /// Each event's data; `[DONE]` as the string "[DONE]".
    var events: [String]

    init(_ bytes: [UInt8]) {
        events = String(decoding: bytes, as: UTF8.self)
            .components(separatedBy: "\n\n")
            .filter { !$0.isEmpty }
            .map { $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : "<not data: \($0)>" }
    }

    /// The chunk objects (everything but `[DONE]`).
    func chunks() throws -> [[String: Any]] {
        try events.filter { $0 != "[DONE]" }.map { try foundationObject(Array($0.utf8)) }
    }

    static func choice(_ chunk: [String: Any]) -> [String: Any]? {
        (chunk["choices"] as? [[String: Any]])?.first
    }

    static func delta(_ chunk: [String: Any]) -> [String: Any] {
        choice(chunk)?["delta"] as? [String: Any] ?? [:]
    }

    /// The content the deltas carry, concatenated; nil when none carried any.
    func content() throws -> String? {
        var text: String?
        for chunk in try chunks() {
            if let piece = Self.delta(chunk)["content"] as? String, !piece.isEmpty { text = (text ?? "") + piece }
        }
        return text
    }

    /// Tool calls assembled by their OpenAI index, arguments canonicalised.
    func calls() throws -> [AnthropicExpectation.Call] {
        var calls: [Int: (id: String, name: String, arguments: String)] = [:]
        for chunk in try chunks() {
            for call in Self.delta(chunk)["tool_calls"] as? [[String: Any]] ?? [] {
                let index = try #require(call["index"] as? Int)
                let function = call["function"] as? [String: Any] ?? [:]
                var entry = calls[index] ?? ("", "", "")
                if let id = call["id"] as? String { entry.id = id }
                if let name = function["name"] as? String { entry.name = name }
                entry.arguments += function["arguments"] as? String ?? ""
                calls[index] = entry
            }
        }
        #expect(calls.keys.sorted() == Array(0..<calls.count), "tool call indexes are 0, 1, … in order")
        return try calls.keys.sorted().map { index in
            let call = calls[index]!
            return AnthropicExpectation.Call(id: call.id, name: call.name, arguments: try canonicalJSON(Array(call.arguments.utf8)))
        }
    }
}

/// OpenAI's usage object as a `TokenUsage`.
func openAIUsage(_ object: Any?) throws -> TokenUsage {
    let usage = try #require(object as? [String: Any])
    let prompt = usage["prompt_tokens_details"] as? [String: Any] ?? [:]
    let completion = usage["completion_tokens_details"] as? [String: Any] ?? [:]
    #expect(usage["total_tokens"] as? Int == (usage["prompt_tokens"] as? Int ?? -1) + (usage["completion_tokens"] as? Int ?? -1))
    return TokenUsage(
        promptTokens: try #require(usage["prompt_tokens"] as? Int),
        cachedPromptTokens: try #require(prompt["cached_tokens"] as? Int),
        completionTokens: try #require(usage["completion_tokens"] as? Int),
        reasoningTokens: completion["reasoning_tokens"] as? Int ?? 0
    )
}

// MARK: Running the adapter

enum AnthropicRun {
    static let labels = ResponseLabels(id: "chatcmpl-test", created: 1_700_000_000, model: "chat-large")

    static func head(stream: Bool, clientWantsUsage: Bool = false, endpoint: InferenceEndpoint = .chatCompletions) -> InferenceRequestHead {
        var body = ByteBuffer()
        body.writeString(#"{"model":"chat-large","stream":\#(stream),"stream_options":{"include_usage":\#(clientWantsUsage)}}"#)
        return try! InferenceRequestHead.parse(body, endpoint: endpoint)
    }

    /// Streams `chunks` through a fresh translator and finishes it.
    static func stream(_ chunks: [[UInt8]], clientWantsUsage: Bool) -> (output: [UInt8], translator: any StreamTranslator) {
        var translator = AnthropicAdapter().makeStreamTranslator(head: head(stream: true, clientWantsUsage: clientWantsUsage), labels: labels)
        var output: [UInt8] = []
        for chunk in chunks {
            output += bytes(translator.translate(offsetBuffer(chunk)))
        }
        output += bytes(translator.finish())
        return (output, translator)
    }

    static func stream(_ text: String, clientWantsUsage: Bool = false) -> (output: OpenAIStreamOutput, translator: any StreamTranslator) {
        let (output, translator) = stream([Array(text.utf8)], clientWantsUsage: clientWantsUsage)
        return (OpenAIStreamOutput(output), translator)
    }
}
