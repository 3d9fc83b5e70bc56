import NIOCore

/// The few fields of an inference request that routing, admission and metering need,
/// read without decoding the rest; plus where they lie, so the body can be rewritten
/// for the upstream by splicing.
public struct InferenceRequestHead: Sendable, Equatable {
    public var endpoint: InferenceEndpoint
    /// The public model the client asked for.
    public var model: String
    public var stream: Bool
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    public var clientWantsUsage: Bool
    /// `max_completion_tokens`, else `max_tokens`, when given; at most `largestOutputTokens`.
    public var maxOutputTokens: Int?
    /// How many choices the client asked for (`n`); 1 when absent.
    public var choices: Int = 1
    /// Which parameter set `maxOutputTokens`: `max_completion_tokens` wins over `max_tokens`.
    public var maxOutputTokensParameter: String = "max_tokens"
    /// `reasoning_effort`, when given: asking for it also asks to see the reasoning.
    public var reasoningEffort: String?

    /// Whether the request asked for reasoning (`reasoning_effort` other than `none`).
    public var asksForReasoning: Bool {
        reasoningEffort.map { $0 != "none" } ?? false
    }

    /// The most output tokens a request may ask for, whatever the deployment: far above
    /// what any model produces, and far below where sums of token counts could overflow.
    public static let largestOutputTokens = 1 << 24
    /// The most choices (`n`) a request may ask for, as OpenAI allows.
    public static let largestChoices = 128

    var modelValue: Range<Int>
    /// The whole `"stream_options": {...}` member, when present.
    var streamOptionsMember: Range<Int>?
    /// The whole `"priority": …` member, when present.
    var priorityMember: Range<Int>?
    /// The offset of the closing `}` of the document.
    var closingBrace: Int

    /// Reads the head of an inference request body.
    ///
    /// - Throws: `OpenAIError` (400) naming what is wrong.
    public static func parse(_ body: ByteBuffer, endpoint: InferenceEndpoint) throws(OpenAIError) -> InferenceRequestHead {
        let result: Result<InferenceRequestHead, OpenAIError> = body.withUnsafeReadableBytes { raw in
            let scanner = JSONScanner(raw)
            let members: [JSONScanner.Member]
            do {
                members = try scanner.topLevelMembers()
            } catch let error as JSONScanError {
                if raw.isEmpty {
                    return .failure(.invalidRequest("The request body is empty; expected a JSON object."))
                }
                if error.reason == .notAnObject {
                    return .failure(.invalidRequest("The request body must be a JSON object."))
                }
                if error.reason == .invalidUTF8 {
                    return .failure(.invalidRequest(
                        "The request body is not valid UTF-8 (at byte \(error.offset)); JSON text must be UTF-8.",
                        code: "invalid_utf8"
                    ))
                }
                return .failure(.invalidRequest(
                    "We could not parse the JSON body of your request (\(error)). The API expects a JSON payload."
                ))
            } catch {
                return .failure(.invalidRequest("We could not parse the JSON body of your request."))
            }
            return Self.read(members, scanner: scanner, endpoint: endpoint, count: raw.count)
        }
        return try result.get()
    }

    private static func read(
        _ members: [JSONScanner.Member],
        scanner: JSONScanner,
        endpoint: InferenceEndpoint,
        count: Int
    ) -> Result<InferenceRequestHead, OpenAIError> {
        var model: (String, Range<Int>)?
        var stream = false
        var clientWantsUsage = false
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var streamOptions: Range<Int>?
        var priority: Range<Int>?
        var choices = 1
        var reasoningEffort: String?
        var seen: UInt8 = 0
        for member in members {
            guard let field = Field(of: member, scanner: scanner) else { continue }
            // A key given twice means what each reader decides (JSON leaves it open): the
            // upstream could honour another `max_tokens` than the one admitted.
            guard seen & field.bit == 0 else {
                return .failure(.invalidRequest("'\(field.name)' is given more than once.", param: field.name))
            }
            seen |= field.bit
            switch field {
            case .model:
                guard let name = scanner.string(at: member.value) else {
                    return .failure(.invalidRequest("'model' must be a string.", param: "model"))
                }
                model = (name, member.value)
            case .stream:
                if scanner.isNull(at: member.value) { continue }
                guard let value = scanner.bool(at: member.value) else {
                    return .failure(.invalidRequest("'stream' must be a boolean.", param: "stream"))
                }
                stream = value
            case .maxTokens, .maxCompletionTokens:
                switch outputTokens(member, name: field.name, scanner: scanner) {
                case .success(let value) where field == .maxTokens: maxTokens = value
                case .success(let value): maxCompletionTokens = value
                case .failure(let error): return .failure(error)
                }
            case .choices:
                if scanner.isNull(at: member.value) { continue }
                guard let value = scanner.integer(at: member.value), (1...largestChoices).contains(value) else {
                    return .failure(.invalidRequest("'n' must be an integer from 1 to \(largestChoices).", param: "n"))
                }
                choices = value
            case .reasoningEffort:
                if scanner.isNull(at: member.value) { continue }
                guard let value = scanner.string(at: member.value) else {
                    return .failure(.invalidRequest("'reasoning_effort' must be a string.", param: "reasoning_effort"))
                }
                reasoningEffort = value
            case .priority:
                // Read only to be replaced when the engine is told the band.
                priority = member.whole
            case .streamOptions:
                if scanner.isNull(at: member.value) { streamOptions = member.whole; continue }
                guard scanner.kind(at: member.value.lowerBound) == .object,
                      let options = try? scanner.members(ofObjectAt: member.value)
                else {
                    return .failure(.invalidRequest("'stream_options' must be an object.", param: "stream_options"))
                }
                streamOptions = member.whole
                for option in options where scanner.key(option, equals: "include_usage") {
                    clientWantsUsage = scanner.bool(at: option.value) ?? false
                }
            }
        }
        guard let (name, modelRange) = model else {
            return .failure(.invalidRequest("You must provide a model parameter.", param: "model"))
        }
        if stream, !endpoint.canStream {
            return .failure(.invalidRequest("'stream' is not supported for \(endpoint.rawValue).", param: "stream"))
        }
        return .success(InferenceRequestHead(
            endpoint: endpoint,
            model: name,
            stream: stream,
            clientWantsUsage: stream && clientWantsUsage,
            maxOutputTokens: maxCompletionTokens ?? maxTokens,
            choices: choices,
            maxOutputTokensParameter: maxCompletionTokens == nil ? "max_tokens" : "max_completion_tokens",
            reasoningEffort: reasoningEffort,
            modelValue: modelRange,
            streamOptionsMember: streamOptions,
            priorityMember: priority,
            closingBrace: closingBrace(of: scanner, count: count)
        ))
    }

    /// An output-token limit that may be null: `.success(nil)` for null, a 400 naming the
    /// parameter for anything but an integer from 0 to `largestOutputTokens`.
    private static func outputTokens(
        _ member: JSONScanner.Member, name: String, scanner: JSONScanner
    ) -> Result<Int?, OpenAIError> {
        if scanner.isNull(at: member.value) { return .success(nil) }
        guard let value = scanner.integer(at: member.value), value >= 0 else {
            return .failure(.invalidRequest("'\(name)' must be a non-negative integer.", param: name))
        }
        guard value <= largestOutputTokens else {
            return .failure(.invalidRequest(
                "'\(name)' is \(value), above the most any model can produce (\(largestOutputTokens)).", param: name
            ))
        }
        return .success(value)
    }

    /// The top-level members the head reads, each of which may be given once.
    private enum Field: UInt8, CaseIterable {
        case model, stream, streamOptions, maxTokens, maxCompletionTokens, choices, priority, reasoningEffort

        var name: String { key.description }
        var bit: UInt8 { 1 << rawValue }

        var key: StaticString {
            switch self {
            case .model: "model"
            case .stream: "stream"
            case .streamOptions: "stream_options"
            case .maxTokens: "max_tokens"
            case .maxCompletionTokens: "max_completion_tokens"
            case .choices: "n"
            case .priority: "priority"
            case .reasoningEffort: "reasoning_effort"
            }
        }

        init?(of member: JSONScanner.Member, scanner: JSONScanner) {
            guard let field = Self.allCases.first(where: { scanner.key(member, equals: $0.key) }) else { return nil }
            self = field
        }
    }

    private static func closingBrace(of scanner: JSONScanner, count: Int) -> Int {
        var index = count - 1
        while index > 0, scanner.bytes[index] != UInt8(ascii: "}") { index -= 1 }
        return index
    }
}

// MARK: - Rewriting for the upstream

extension InferenceRequestHead {
    /// The body to send upstream: `model` replaced by the deployment's upstream model and,
    /// for streams, `stream_options.include_usage` forced on so usage is always metered.
    /// Every other byte goes through unchanged.
    ///
    /// - Parameter priority: vLLM's `priority` to set, replacing the client's (lower is
    ///   served first); nil leaves the body's as it is.
    public func upstreamBody(from body: ByteBuffer, upstreamModel: String, priority: Int? = nil) -> ByteBuffer {
        var edits: [(range: Range<Int>, replacement: Replacement)] = [
            (modelValue, .model),
        ]
        if priority != nil {
            if let priorityMember {
                edits.append((priorityMember, .priority))
            } else {
                edits.append((closingBrace..<closingBrace, .appendPriority))
            }
        }
        if stream {
            if let streamOptionsMember {
                edits.append((streamOptionsMember, .streamOptions))
            } else {
                edits.append((closingBrace..<closingBrace, .appendStreamOptions))
            }
        }
        edits.sort { $0.range.lowerBound < $1.range.lowerBound }

        var output = ByteBuffer()
        output.reserveCapacity(body.readableBytes + upstreamModel.utf8.count + 48)
        var cursor = 0
        let base = body.readerIndex
        for edit in edits {
            if let slice = body.getSlice(at: base + cursor, length: edit.range.lowerBound - cursor) {
                output.writeImmutableBuffer(slice)
            }
            switch edit.replacement {
            case .model:
                output.writeJSONString(upstreamModel)
            case .streamOptions:
                output.writeStaticString(#""stream_options":{"include_usage":true}"#)
            case .appendStreamOptions:
                output.writeStaticString(#","stream_options":{"include_usage":true}"#)
            case .priority:
                output.writeString(#""priority":\#(priority ?? 0)"#)
            case .appendPriority:
                output.writeString(#","priority":\#(priority ?? 0)"#)
            }
            cursor = edit.range.upperBound
        }
        if let rest = body.getSlice(at: base + cursor, length: body.readableBytes - cursor) {
            output.writeImmutableBuffer(rest)
        }
        return output
    }

    private enum Replacement {
        case model, streamOptions, appendStreamOptions, priority, appendPriority
    }
}
