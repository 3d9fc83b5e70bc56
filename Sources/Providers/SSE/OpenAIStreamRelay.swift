import NIOCore

/// Relays an OpenAI-format chat or completions stream to the client while reading what
/// metering needs from it: the usage chunk, the number of content chunks, `[DONE]`.
///
/// Switchyard always asks the upstream for usage; when the client did not, the usage
/// chunk is taken out of what the client sees (or, where an engine puts usage on a chunk
/// that also carries choices, the `usage` member is cut from that chunk).
///
/// Every chunk's `model` is rewritten to the public model the tenant asked for. A client
/// that asked for usage gets a usage chunk even when the upstream sent none (a cut or
/// blocked stream): the estimate the ledger records, flagged estimated there. A bare JSON
/// error object in place of events ends the stream as an error event, without `[DONE]`.
///
/// In front of a self-hosted engine the relay also hides the engine's quirks (see
/// `EngineStreamQuirks`). Either way chunks are scanned, not decoded, and only a chunk
/// that needs a fix is spliced; the rest go through byte for byte.
public struct OpenAIStreamRelay: StreamTranslator {
    private var parser = SSEParser()
    private let clientWantsUsage: Bool
    private var engineQuirks: EngineStreamQuirks?
    private let labels: ResponseLabels
    /// The public model as a JSON string.
    private let publicModel: [UInt8]
    /// The raw `id`, `object` and `created` of the upstream's chunks, for a usage chunk
    /// the relay adds.
    private var chunkID: [UInt8]?
    private var chunkObject: [UInt8]?
    private var chunkCreated: [UInt8]?
    /// Whether the upstream sent a usage object at all, read or not (in a shape
    /// Switchyard does not know): the client then gets that one, not an estimate too.
    private var upstreamSentUsage = false

    /// Usage reported by the upstream, once its usage chunk went by.
    public private(set) var usage: TokenUsage?
    /// Chunks that carried choices; with no reported usage, a stand-in for output tokens.
    public private(set) var contentChunks = 0
    /// Whether the upstream sent `[DONE]` (not counting one the relay added for an engine).
    public private(set) var sawDone = false
    /// The error the upstream sent mid-stream, if it did (relayed as it came).
    public private(set) var upstreamError: OpenAIError?

    /// - Parameters:
    ///   - clientWantsUsage: whether the client asked for usage (`stream_options.include_usage`).
    ///   - labels: the public model, and the id that stands in for an engine's missing one.
    ///   - engine: whether the upstream is a self-hosted engine, whose quirks are fixed;
    ///     an OpenAI or Azure stream is relayed as it is but for its `model`.
    public init(clientWantsUsage: Bool, labels: ResponseLabels, engine: Bool = false) {
        self.clientWantsUsage = clientWantsUsage
        self.labels = labels
        self.engineQuirks = engine ? EngineStreamQuirks(labels: labels) : nil
        self.publicModel = .jsonString(labels.model)
    }

    /// Consumes one chunk from the upstream and returns the bytes to send to the client.
    public mutating func translate(_ chunk: ByteBuffer) -> ByteBuffer {
        var output = ByteBuffer()
        output.reserveCapacity(chunk.readableBytes + 16)
        for event in parser.feed(chunk) {
            emit(event, into: &output)
        }
        return output
    }

    /// Ends the stream; returns the bytes of an event left without its blank line, and
    /// for an engine that finished its answer without `[DONE]`, what it still owed.
    public mutating func finish() -> ByteBuffer {
        var output = ByteBuffer()
        if let event = parser.finish() { emit(event, into: &output) }
        if !sawDone, upstreamError == nil, let body = parser.strayError {
            // The upstream ended the stream with a bare error object, not an event.
            let error = labels.redaction.redact(UpstreamError.map(status: 502, body: body))
            upstreamError = error
            ChatCompletionEncoder.errorEvent(error, into: &output)
            return output
        }
        if !sawDone, upstreamError == nil, var quirks = engineQuirks, quirks.completed {
            quirks.closingEvents(into: &output)
            engineQuirks = quirks
            writeEstimatedUsageIfOwed(into: &output)
            output.writeStaticString("data: [DONE]\n\n")
        }
        return output
    }

    /// A client that asked for usage gets a usage chunk even when the upstream sent none:
    /// the estimate, which is also what the ledger records.
    private mutating func writeEstimatedUsageIfOwed(into output: inout ByteBuffer) {
        guard clientWantsUsage, usage == nil, !upstreamSentUsage, upstreamError == nil else { return }
        let estimate = labels.estimatedUsage(contentChunks: contentChunks)
        usage = estimate
        output.writeStaticString(#"data: {"id":"#)
        if let chunkID { output.writeBytes(chunkID) } else { output.writeJSONString(labels.id) }
        output.writeStaticString(#","object":"#)
        if let chunkObject { output.writeBytes(chunkObject) } else { output.writeStaticString(#""chat.completion.chunk""#) }
        output.writeStaticString(#","created":"#)
        if let chunkCreated { output.writeBytes(chunkCreated) } else { output.writeString(String(labels.created)) }
        output.writeStaticString(#","model":"#)
        output.writeBytes(publicModel)
        output.writeStaticString(#","choices":[],"usage":"#)
        ChatCompletionEncoder.writeUsage(estimate, into: &output)
        output.writeStaticString("}\n\n")
    }

    private mutating func emit(_ event: SSEEvent, into output: inout ByteBuffer) {
        // Nothing follows an error event, not even the upstream's `[DONE]`.
        guard upstreamError == nil else { return }
        if event.isDone {
            sawDone = true
            if upstreamError == nil, var quirks = engineQuirks {
                quirks.closingEvents(into: &output)
                engineQuirks = quirks
            }
            writeEstimatedUsageIfOwed(into: &output)
            output.writeStaticString("data: [DONE]\n\n")
            return
        }
        var edits = JSONEdits()
        var drop = false
        event.data.withUnsafeBytes { raw in
            let scanner = JSONScanner(raw)
            guard let members = try? scanner.topLevelMembers() else { return }
            var usageMember: JSONScanner.Member?
            var choices = -1
            for member in members {
                if scanner.key(member, equals: "usage") {
                    usageMember = member
                } else if scanner.key(member, equals: "choices"), scanner.kind(at: member.value.lowerBound) == .array {
                    choices = (try? scanner.countElements(ofArrayAt: member.value)) ?? 0
                } else if scanner.key(member, equals: "error") {
                    upstreamError = labels.redaction.redact(UpstreamError.map(status: 502, body: ByteBuffer(bytes: event.data)))
                } else if scanner.key(member, equals: "model") {
                    if scanner.kind(at: member.value.lowerBound) == .string,
                       !raw[member.value].elementsEqual(publicModel) {
                        edits.replace(member.value, with: publicModel)
                    }
                } else if chunkID == nil, scanner.key(member, equals: "id"), !scanner.isNullOrEmptyString(at: member.value) {
                    chunkID = scanner.raw(member.value)
                } else if chunkObject == nil, scanner.key(member, equals: "object"), scanner.kind(at: member.value.lowerBound) == .string {
                    chunkObject = scanner.raw(member.value)
                } else if chunkCreated == nil, scanner.key(member, equals: "created"), scanner.integer(at: member.value) != nil {
                    chunkCreated = scanner.raw(member.value)
                }
            }
            if choices > 0 { contentChunks += 1 }
            engineQuirks?.normalise(members, scanner: scanner, edits: &edits)
            guard let usageMember else { return }
            let isNull = scanner.isNull(at: usageMember.value)
            if !isNull { upstreamSentUsage = true }
            if !isNull, let reported = TokenUsage.read(usageAt: usageMember.value, scanner: scanner) {
                usage = reported
            }
            if !isNull, choices <= 0 {
                engineQuirks?.upstreamSentUsageChunk()
            } else if !isNull, clientWantsUsage, engineQuirks != nil {
                // Usage riding on a chunk with choices (llama.cpp, TGI) is moved to a
                // usage chunk of its own, where SDKs look for it.
                engineQuirks?.deferUsage(scanner.raw(usageMember.value))
                edits.remove(Self.memberWithSeparator(usageMember, in: raw))
                return
            }
            guard !clientWantsUsage else { return }
            // The client did not ask for usage: it sees neither the usage chunk nor the
            // `"usage":null` that asking for it adds to every other chunk.
            if !isNull, choices <= 0 {
                drop = true
            } else {
                edits.remove(Self.memberWithSeparator(usageMember, in: raw))
            }
        }
        if drop { return }
        if let upstreamError {
            // The error event carries the provider's words: it goes out in Switchyard's
            // encoding, scrubbed, and nothing follows it.
            ChatCompletionEncoder.errorEvent(upstreamError, into: &output)
            return
        }
        if let name = event.name {
            output.writeStaticString("event: ")
            output.writeString(name)
            output.writeStaticString("\n")
        }
        output.writeStaticString("data: ")
        if edits.isEmpty {
            Self.writeData(event.data[...], into: &output)
        } else {
            edits.apply(to: event.data) { Self.writeData($0, into: &output) }
        }
        output.writeStaticString("\n\n")
    }

    /// Writes event data; a line break inside it starts a new `data:` line, as the data
    /// of an event that came in several `data:` lines must.
    private static func writeData(_ data: ArraySlice<UInt8>, into output: inout ByteBuffer) {
        var start = data.startIndex
        while let newline = data[start...].firstIndex(of: 0x0A) {
            output.writeBytes(data[start..<newline])
            output.writeStaticString("\ndata: ")
            start = newline + 1
        }
        output.writeBytes(data[start...])
    }

    /// The bytes to remove to delete `member` from its object: the member and one comma
    /// beside it (the following one, or for the last member the preceding one).
    static func memberWithSeparator(_ member: JSONScanner.Member, in raw: UnsafeRawBufferPointer) -> Range<Int> {
        var end = member.whole.upperBound
        while end < raw.count, raw[end] == 0x20 || raw[end] == 0x0A || raw[end] == 0x0D || raw[end] == 0x09 { end += 1 }
        if end < raw.count, raw[end] == UInt8(ascii: ",") {
            return member.whole.lowerBound..<(end + 1)
        }
        var start = member.whole.lowerBound
        while start > 0 {
            start -= 1
            if raw[start] == UInt8(ascii: ",") { return start..<member.whole.upperBound }
            if raw[start] == UInt8(ascii: "{") { break }
        }
        return member.whole
    }
}
