import FuzzSupport
import NIOCore
@testable import Providers

// Input: one byte choosing the upstream model name, then a request body.
//
// The body is parsed for every endpoint. A rejection must be a 400 in OpenAI's shape.
// A head that parses is rewritten for the upstream, and the rewrite must still be one
// JSON object with the same members in the same order, only `model` (and, for a stream,
// `stream_options`) changed; it must parse to the same head with the upstream's model and
// usage forced on; and rewriting it again must change nothing.

private let upstreamModels = [
    "gpt-4o-mini-2024-07-18",
    "",
    #"we"ird\model/"#,
    "control\u{1}\t\n and caf\u{e9} \u{1F600}",
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let upstreamModel = upstreamModels[Int(input.byte()) % upstreamModels.count]
    let payload = input.rest

    var outcomes: [InferenceEndpoint: Result<InferenceRequestHead, OpenAIError>] = [:]
    for endpoint in InferenceEndpoint.allCases {
        let body = tailAlignedBuffer(payload)
        let outcome = Result { () throws(OpenAIError) in try InferenceRequestHead.parse(body, endpoint: endpoint) }
        outcomes[endpoint] = outcome
        switch outcome {
        case .failure(let error):
            invariant(error.status == 400 && error.type == "invalid_request_error", "a rejection that is not a 400: \(error)")
            invariant(JSONOracle.object(error.jsonBody().readableBytesView)?["error"] != nil, "an error body that is no JSON: \(error)")
        case .success(let head):
            check(head, body: body, upstreamModel: upstreamModel)
        }
    }
    // Chat and completions read the same fields; embeddings refuse only a stream.
    let chat = outcomes[.chatCompletions].map(endpointless)
    invariant(chat == outcomes[.completions].map(endpointless), "chat and completions read the body differently")
    if case .success(let head) = outcomes[.chatCompletions], !head.stream {
        invariant(outcomes[.embeddings].map(endpointless) == chat, "embeddings read a body without a stream differently")
    }
    return 0
}

/// The outcome with the endpoint taken out, to compare across endpoints.
private func endpointless(_ outcome: Result<InferenceRequestHead, OpenAIError>) -> Result<InferenceRequestHead, OpenAIError> {
    outcome.map { head in
        var head = head
        head.endpoint = .chatCompletions
        return head
    }
}

private func check(_ head: InferenceRequestHead, body: ByteBuffer, upstreamModel: String) {
    invariant(!head.clientWantsUsage || head.stream, "usage wanted without a stream")
    if let tokens = head.maxOutputTokens {
        invariant((0...InferenceRequestHead.largestOutputTokens).contains(tokens), "maxOutputTokens \(tokens) out of range")
    }

    let rewritten = head.upstreamBody(from: body, upstreamModel: upstreamModel)
    let original = body.readableArray
    let upstream = rewritten.readableArray
    compareMembers(original: original, rewritten: upstream, head: head, upstreamModel: upstreamModel)

    let reparsed: InferenceRequestHead
    do {
        reparsed = try InferenceRequestHead.parse(tailAlignedBuffer(upstream), endpoint: head.endpoint)
    } catch {
        invariant(false, "the upstream body does not parse (\(error)): \(describe(upstream))")
        return
    }
    var expected = head
    expected.model = upstreamModel
    expected.clientWantsUsage = head.stream
    expected.modelValue = reparsed.modelValue
    expected.streamOptionsMember = reparsed.streamOptionsMember
    expected.closingBrace = reparsed.closingBrace
    invariant(reparsed == expected, "the upstream body reads as \(reparsed), expected \(expected): \(describe(upstream))")

    let again = reparsed.upstreamBody(from: tailAlignedBuffer(upstream), upstreamModel: upstreamModel).readableArray
    invariant(again == upstream, "rewriting the upstream body again changed it:\n  \(describe(upstream))\n  \(describe(again))")
}

/// The rewrite keeps every member, in order, byte for byte, except `model`'s value and
/// `stream_options`, which for a stream is `{"include_usage":true}` (added last if absent;
/// its key may lose its escapes, so keys are compared decoded); and what Foundation reads
/// as JSON stays JSON.
private func compareMembers(original: [UInt8], rewritten: [UInt8], head: InferenceRequestHead, upstreamModel: String) {
    guard let before = members(of: original), let after = members(of: rewritten) else {
        invariant(false, "the upstream body is no JSON object for the scanner: \(describe(rewritten))")
        return
    }
    var modelJSON = ByteBuffer()
    modelJSON.writeJSONString(upstreamModel)
    let streamOptions = Array(#"{"include_usage":true}"#.utf8)
    var expected = before.map { member -> (key: [UInt8], value: [UInt8]) in
        if member.value == head.modelValue { return (member.key, modelJSON.readableArray) }
        if head.stream, member.whole == head.streamOptionsMember { return (member.key, streamOptions) }
        return (member.key, Array(original[member.value]))
    }
    if head.stream, head.streamOptionsMember == nil {
        expected.append((Array("stream_options".utf8), streamOptions))
    }
    let actual = after.map { (key: $0.key, value: Array(rewritten[$0.value])) }
    invariant(
        actual.map(\.key) == expected.map(\.key) && actual.map(\.value) == expected.map(\.value),
        "the rewrite changed more than model and stream_options:\n  \(describe(original))\n  \(describe(rewritten))"
    )
    let readable = original.withUnsafeBytes { JSONOracle.readsAsUTF8($0) }
    if readable, JSONOracle.isValid(original) {
        invariant(JSONOracle.object(rewritten) != nil, "Foundation reads the body but not its rewrite: \(describe(rewritten))")
    }
}

/// The top-level members of a JSON object: decoded key, value and whole ranges.
private func members(of bytes: [UInt8]) -> [(key: [UInt8], value: Range<Int>, whole: Range<Int>)]? {
    bytes.withUnsafeBytes { raw in
        let scanner = JSONScanner(raw)
        return (try? scanner.topLevelMembers()).map { members in
            members.map { member in
                let key = scanner.string(at: (member.key.lowerBound - 1)..<(member.key.upperBound + 1)) ?? ""
                return (key: Array(key.utf8), value: member.value, whole: member.whole)
            }
        }
    }
}
