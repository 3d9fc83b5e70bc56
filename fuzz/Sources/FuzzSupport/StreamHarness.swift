import NIOCore
import Providers

/// What one translation of a stream gave the client, and what the translator kept.
public struct StreamOutcome: Equatable {
    public var output: [UInt8]
    public var usage: TokenUsage?
    public var contentChunks: Int
    public var upstreamError: OpenAIError?
}

/// Feeds `payload` to a new translator in the chunks of `plan`, calling `translate` per
/// chunk and then `finish`.
public func translate(
    _ payload: UnsafeRawBufferPointer,
    chunks: [Range<Int>],
    with make: () -> any StreamTranslator
) -> (outcome: StreamOutcome, translator: any StreamTranslator) {
    var translator = make()
    var output: [UInt8] = []
    for range in chunks {
        output += translator.translate(tailAlignedBuffer(UnsafeRawBufferPointer(rebasing: payload[range]))).readableArray
    }
    output += translator.finish().readableArray
    let outcome = StreamOutcome(
        output: output, usage: translator.usage, contentChunks: translator.contentChunks, upstreamError: translator.upstreamError
    )
    return (outcome, translator)
}

/// Translates `payload` whole and re-chunked by `plan`; the two must agree byte for byte
/// and in what the translator kept (usage, content chunks, the upstream's error).
public func translateChunkingInvariant(
    _ payload: UnsafeRawBufferPointer,
    plan: ChunkPlan,
    with make: () -> any StreamTranslator
) -> (outcome: StreamOutcome, translator: any StreamTranslator) {
    let whole = translate(payload, chunks: payload.isEmpty ? [] : [0..<payload.count], with: make)
    let chunked = translate(payload, chunks: plan.chunks(count: payload.count), with: make)
    invariant(
        whole.outcome == chunked.outcome,
        """
        re-chunking changed the translation (sizes \(plan.sizes))
          whole:   \(describe(whole.outcome.output)) \(String(describing: whole.outcome.usage)) \(whole.outcome.contentChunks) \(String(describing: whole.outcome.upstreamError))
          chunked: \(describe(chunked.outcome.output)) \(String(describing: chunked.outcome.usage)) \(chunked.outcome.contentChunks) \(String(describing: chunked.outcome.upstreamError))
        """
    )
    return chunked
}

/// Checks a translated stream (Anthropic's, Gemini's): every `data:` payload is `[DONE]`
/// or a JSON object; exactly one event ends the stream, `[DONE]` or an error object, and
/// it is the last; the translator reports an error exactly when the stream ended with one.
public func checkTranslatedStream(_ outcome: StreamOutcome) {
    checkUsage(outcome.usage)
    let events = StrictSSE.events(outcome.output)
    var terminal: [Int] = []
    for (position, event) in events.enumerated() {
        if event.isDone {
            terminal.append(position)
            continue
        }
        guard let object = JSONOracle.object(event.data) else {
            invariant(false, "a data payload that is no JSON object: \(describe(event.data))")
            return
        }
        if object["error"] != nil { terminal.append(position) }
    }
    invariant(terminal == [events.count - 1], "the stream does not end with exactly one [DONE] or error: \(describe(outcome.output))")
    invariant(
        (outcome.upstreamError != nil) == !events[events.count - 1].isDone,
        "upstreamError \(String(describing: outcome.upstreamError)) disagrees with the last event: \(describe(outcome.output))"
    )
}

/// Labels for translated chunks; some carry characters that must be escaped in JSON.
public func responseLabels(_ choice: UInt8) -> ResponseLabels {
    let models = ["gpt-4o-mini", "", #"m"o\d"e\#u{1}l"#, "caf\u{e9} \u{1F600}\n"]
    let ids = ["chatcmpl-req_fuzz", #"chatcmpl-"\\"#]
    // Bit 3 exposes reasoning, so thinking and thought summaries are translated too.
    return ResponseLabels(
        id: ids[Int(choice >> 2) % ids.count], created: 1_700_000_000, model: models[Int(choice) % models.count],
        exposeReasoning: choice & 0b1000 != 0, promptTokenEstimate: Int(choice >> 4)
    )
}

/// The head of a streaming chat request, with or without `stream_options.include_usage`.
public func streamingHead(clientWantsUsage: Bool) -> InferenceRequestHead {
    let body = clientWantsUsage
        ? #"{"model":"fuzz","stream":true,"stream_options":{"include_usage":true}}"#
        : #"{"model":"fuzz","stream":true}"#
    do {
        return try InferenceRequestHead.parse(ByteBuffer(string: body), endpoint: .chatCompletions)
    } catch {
        fatalError("the fixed streaming head does not parse: \(error)")
    }
}

/// Token counts are held to `0...TokenUsage.largestCount`, whatever the upstream reported.
public func checkUsage(_ usage: TokenUsage?) {
    guard let usage else { return }
    let counts = [usage.promptTokens, usage.cachedPromptTokens, usage.completionTokens, usage.reasoningTokens]
    invariant(counts.allSatisfy { (0...TokenUsage.largestCount).contains($0) }, "token counts out of range: \(usage)")
}
