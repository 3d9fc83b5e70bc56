import Foundation

/// The wire form of a usage event: one JSON object, the same in the spool file and in the
/// usage stream. Keys are the ledger's column names; `started_at` is milliseconds since
/// 1970; absent optionals are left out. It carries the billing terms too, which the
/// ledger needs when it stores the event (in Redis mode that is `switchyard meter`).
///
/// Encoding is hand-written: it runs on the request path, once per request, and must not
/// cost what a general-purpose encoder does. Decoding runs where events are stored.
extension UsageEvent {
    /// The event as one line of JSON, without the newline.
    public func wireJSON() -> [UInt8] {
        var out = WireWriter()
        out.string("request_id", requestID)
        out.string("tenant_id", tenantID)
        out.string("tenant_key_id", tenantKeyID)
        out.string("user_id", userID)
        out.string("model", model)
        out.string("deployment", deployment)
        out.string("provider", provider)
        out.string("provider_key_id", providerKeyID)
        out.string("engine_pool", enginePool)
        out.integer("prompt_tokens", promptTokens)
        out.integer("cached_tokens", cachedTokens)
        out.integer("completion_tokens", completionTokens)
        out.integer("reasoning_tokens", reasoningTokens)
        out.bool("tokens_estimated", tokensEstimated)
        out.integer("cost_micros", costMicros)
        out.string("currency", currency)
        out.integer("status", status)
        out.string("error_type", errorType)
        out.integer("started_at", startedAt.ledgerMilliseconds)
        out.integer("ttft_ms", timeToFirstTokenMilliseconds)
        out.integer("duration_ms", durationMilliseconds)
        out.bool("streamed", streamed)
        out.bool("client_aborted", clientAborted)
        out.integer("queue_ms", queueMilliseconds)
        out.bool("spilled", spilled)
        out.integer("slot_ms", slotMilliseconds)
        if let terms {
            out.bool("billed_terms", true)
            out.integer("quota_tokens", terms.monthlyQuotaTokens)
            out.integer("overage_per_million", terms.overagePerMillion)
        }
        return out.finish()
    }

    /// Reads an event from its wire form.
    /// - Throws: ``UsageEventWireError`` when the bytes are not a complete event (a line cut
    ///   off by a crash, or not an event at all).
    public init(wireJSON bytes: some Collection<UInt8>) throws {
        var fields = WireFields()
        func read(_ buffer: UnsafeBufferPointer<UInt8>) -> Result<Void, any Error> {
            var reader = WireReader(buffer)
            return Result { try reader.read(into: &fields) }
        }
        let parsed = bytes.withContiguousStorageIfAvailable(read) ?? Array(bytes).withUnsafeBufferPointer(read)
        try parsed.get()
        func required<T>(_ value: T?, _ name: String) throws -> T {
            guard let value else { throw UsageEventWireError(message: "the usage event has no '\(name)'") }
            return value
        }
        func int(_ value: Int64?) -> Int? { value.flatMap { Int(exactly: $0) } }
        self.init(
            requestID: try required(fields.requestID, "request_id"),
            tenantID: try required(fields.tenantID, "tenant_id"),
            tenantKeyID: fields.tenantKeyID,
            model: try required(fields.model, "model"),
            deployment: fields.deployment,
            provider: fields.provider,
            providerKeyID: fields.providerKeyID,
            promptTokens: try required(int(fields.promptTokens), "prompt_tokens"),
            cachedTokens: try required(int(fields.cachedTokens), "cached_tokens"),
            completionTokens: try required(int(fields.completionTokens), "completion_tokens"),
            reasoningTokens: try required(int(fields.reasoningTokens), "reasoning_tokens"),
            tokensEstimated: try required(fields.tokensEstimated, "tokens_estimated"),
            costMicros: try required(fields.costMicros, "cost_micros"),
            currency: try required(fields.currency, "currency"),
            status: try required(int(fields.status), "status"),
            errorType: fields.errorType,
            startedAt: Date(ledgerMilliseconds: try required(fields.startedAt, "started_at")),
            timeToFirstTokenMilliseconds: int(fields.ttft),
            durationMilliseconds: try required(int(fields.duration), "duration_ms"),
            streamed: try required(fields.streamed, "streamed"),
            clientAborted: try required(fields.clientAborted, "client_aborted"),
            queueMilliseconds: int(fields.queue),
            spilled: try required(fields.spilled, "spilled"),
            enginePool: fields.enginePool,
            slotMilliseconds: int(fields.slot),
            userID: fields.userID,
            terms: fields.billedTerms == true
                ? BillingTerms(monthlyQuotaTokens: int(fields.quotaTokens), overagePerMillion: fields.overagePerMillion)
                : nil
        )
    }
}

/// Appends the fields of one JSON object to a byte buffer.
private struct WireWriter {
    private var bytes: [UInt8]

    init() {
        bytes = []
        bytes.reserveCapacity(512)
        bytes.append(UInt8(ascii: "{"))
    }

    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private mutating func key(_ name: StaticString) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    mutating func string(_ name: StaticString, _ value: String?) {
        guard let value else { return }
        key(name)
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0..<0x20:
                let hex: StaticString = "0123456789abcdef"
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                hex.withUTF8Buffer { digits in
                    bytes.append(digits[Int(byte >> 4)])
                    bytes.append(digits[Int(byte & 0xF)])
                }
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func integer(_ name: StaticString, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        key(name)
        var magnitude = UInt64(value.magnitude)
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        // Digits backwards into a small buffer, then forwards into the line.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var count = 0
            repeat {
                digits[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[(20 - count)...]))
        }
    }

    mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        let word: StaticString = value ? "true" : "false"
        word.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }
}
