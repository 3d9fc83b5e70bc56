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
    /// - Throws: `DecodingError` when the bytes are not a complete event (a line cut off
    ///   by a crash, or not an event at all).
    public init(wireJSON bytes: some Sequence<UInt8>) throws {
        let wire = try JSONDecoder().decode(Wire.self, from: Data(bytes))
        self.init(
            requestID: wire.request_id, tenantID: wire.tenant_id, tenantKeyID: wire.tenant_key_id, model: wire.model,
            deployment: wire.deployment, provider: wire.provider, providerKeyID: wire.provider_key_id,
            promptTokens: wire.prompt_tokens, cachedTokens: wire.cached_tokens, completionTokens: wire.completion_tokens,
            reasoningTokens: wire.reasoning_tokens, tokensEstimated: wire.tokens_estimated, costMicros: wire.cost_micros,
            currency: wire.currency, status: wire.status, errorType: wire.error_type,
            startedAt: Date(ledgerMilliseconds: wire.started_at), timeToFirstTokenMilliseconds: wire.ttft_ms,
            durationMilliseconds: wire.duration_ms, streamed: wire.streamed, clientAborted: wire.client_aborted,
            queueMilliseconds: wire.queue_ms, spilled: wire.spilled, enginePool: wire.engine_pool,
            slotMilliseconds: wire.slot_ms, userID: wire.user_id,
            terms: wire.billed_terms == true
                ? BillingTerms(monthlyQuotaTokens: wire.quota_tokens, overagePerMillion: wire.overage_per_million)
                : nil
        )
    }

    // swiftlint:disable identifier_name
    private struct Wire: Decodable {
        var request_id: String
        var tenant_id: String
        var tenant_key_id: String?
        var user_id: String?
        var model: String
        var deployment: String?
        var provider: String?
        var provider_key_id: String?
        var engine_pool: String?
        var prompt_tokens: Int
        var cached_tokens: Int
        var completion_tokens: Int
        var reasoning_tokens: Int
        var tokens_estimated: Bool
        var cost_micros: Int64
        var currency: String
        var status: Int
        var error_type: String?
        var started_at: Int64
        var ttft_ms: Int?
        var duration_ms: Int
        var streamed: Bool
        var client_aborted: Bool
        var queue_ms: Int?
        var spilled: Bool
        var slot_ms: Int?
        var billed_terms: Bool?
        var quota_tokens: Int?
        var overage_per_million: Int64?
    }
    // swiftlint:enable identifier_name
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
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func integer(_ name: StaticString, _ value: (some BinaryInteger)?) {
        guard let value else { return }
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: value ? Array("true".utf8) : Array("false".utf8))
    }
}
