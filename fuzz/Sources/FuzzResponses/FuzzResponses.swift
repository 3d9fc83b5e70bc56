import FuzzSupport
import NIOCore
import Providers

// Input: an upstream's answer as HTTP text, as the `.http` fixtures hold it: a status line
// (`HTTP/1.1 429 Too Many Requests`), header lines, a blank line, the body.
//
// For every adapter: `mapError` with that status, headers and body must give an error in
// OpenAI's shape whose JSON and SSE forms are valid, with a status in 400…599 for any
// status outside 2xx, and capacity signals whose durations lie in
// `0...RateLimitSignals.longestReportedDelay`. Adapters that translate answers translate
// the body too: the result is a JSON object (for an engine, JSON when the body was) or an
// error in OpenAI's shape; token counts stay in `0...TokenUsage.largestCount`.

private let adapters: [any ProviderAdapter] = [
    OpenAIAdapter(kind: .openai), OpenAIAdapter(kind: .azureOpenAI), OpenAIAdapter(kind: .engine),
    AnthropicAdapter(), GeminiAdapter(),
]

private let heads: [InferenceRequestHead] = InferenceEndpoint.allCases.map { endpoint in
    do {
        return try InferenceRequestHead.parse(ByteBuffer(string: #"{"model":"fuzz"}"#), endpoint: endpoint)
    } catch {
        fatalError("the fixed head does not parse: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponses(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let answer = HTTPAnswer(UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size))
    let bodyIsJSON = answer.body.withUnsafeBytes { JSONOracle.readsAsUTF8($0) } && JSONOracle.isValid(answer.body)
    let labels = responseLabels(UInt8(truncatingIfNeeded: size))

    checkUsage(TokenUsage.fromResponseBody(tailAlignedBuffer(answer.body)))
    for adapter in adapters {
        let failure = adapter.mapError(status: answer.status, headers: answer.headers, body: tailAlignedBuffer(answer.body))
        checkError(failure.error, context: "\(type(of: adapter)).mapError(status: \(answer.status))")
        // `mapError` sees every answer outside 2xx; what the client gets is an error.
        if !(200..<300).contains(answer.status) {
            invariant((400...599).contains(failure.error.status), "\(type(of: adapter)) maps \(answer.status) to \(failure.error.status)")
        }
        checkSignals(failure.signals)
        checkSignals(adapter.rateLimitSignals(status: answer.status, headers: answer.headers, body: nil))

        for head in heads where adapter.translatesResponses(for: head.endpoint) {
            do {
                let translated = try adapter.translateResponse(tailAlignedBuffer(answer.body), head: head, labels: labels)
                checkUsage(translated.usage)
                let isEngine = (adapter as? OpenAIAdapter)?.kind == .engine
                // An engine's answer that is no JSON object goes through as it came.
                if isEngine {
                    if bodyIsJSON {
                        invariant(
                            JSONOracle.isValid(translated.body.readableBytesView),
                            "the engine's quirk fixes broke a JSON answer: \(describe(translated.body.readableBytesView))"
                        )
                    }
                } else {
                    invariant(
                        JSONOracle.object(translated.body.readableBytesView) != nil,
                        "\(type(of: adapter)).translateResponse wrote no JSON object: \(describe(translated.body.readableBytesView))"
                    )
                }
            } catch {
                checkError(error, context: "\(type(of: adapter)).translateResponse")
            }
        }
    }
    return 0
}

private func checkError(_ error: OpenAIError, context: @autoclosure () -> String) {
    let body = error.jsonBody().readableArray
    invariant(JSONOracle.object(body)?["error"] is [String: Any], "\(context()): an error body that is not OpenAI's shape: \(describe(body))")
    let events = StrictSSE.events(error.sseEvent().readableArray)
    invariant(events.count == 1 && events[0].data == body, "\(context()): the error's SSE event is not its body")
}

private func checkSignals(_ signals: RateLimitSignals) {
    let durations = [signals.retryAfter, signals.requests.reset, signals.tokens.reset, signals.inputTokens.reset, signals.outputTokens.reset]
    for case let duration? in durations {
        invariant(
            duration >= .zero && duration <= RateLimitSignals.longestReportedDelay,
            "a reported delay of \(duration) outside 0...\(RateLimitSignals.longestReportedDelay): \(signals)"
        )
    }
}

/// An answer as HTTP text; lenient, since the fuzzer breaks the framing too.
private struct HTTPAnswer {
    var status = 500
    var headers: HeaderFields = []
    var body: [UInt8] = []

    init(_ raw: UnsafeRawBufferPointer) {
        let bytes = Array(raw)
        var lineStart = 0
        var lineNumber = 0
        var index = 0
        while index < bytes.count {
            guard bytes[index] == 0x0A else {
                index += 1
                continue
            }
            var line = bytes[lineStart..<index]
            if line.last == 0x0D { line = line.dropLast() }
            lineStart = index + 1
            index += 1
            if line.isEmpty, lineNumber > 0 { break }
            defer { lineNumber += 1 }
            let text = String(decoding: line, as: UTF8.self)
            if lineNumber == 0 {
                let words = text.split(separator: " ")
                status = words.dropFirst().first.flatMap { Int($0) } ?? words.first.flatMap { Int($0) } ?? 500
            } else if let colon = text.firstIndex(of: ":") {
                headers.append((name: String(text[..<colon]), value: String(text[text.index(after: colon)...])))
            }
        }
        body = Array(bytes[min(lineStart, bytes.count)...])
    }
}
