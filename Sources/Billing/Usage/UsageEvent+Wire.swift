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

/// The wire form could not be read as a usage event.
public struct UsageEventWireError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One JSON value of the wire form.
private enum WireValue {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
}

/// The fields of an event as they are read; a key it does not know is ignored (a newer
/// writer may add one), a known key with a value of the wrong kind is refused.
private struct WireFields {
    var requestID, tenantID, tenantKeyID, userID, model, deployment, provider, providerKeyID, enginePool: String?
    var currency, errorType: String?
    var promptTokens, cachedTokens, completionTokens, reasoningTokens, costMicros, status, startedAt: Int64?
    var ttft, duration, queue, slot, quotaTokens, overagePerMillion: Int64?
    var tokensEstimated, streamed, clientAborted, spilled, billedTerms: Bool?

    mutating func set(_ key: String, _ value: WireValue) throws {
        func string() throws -> String? {
            switch value {
            case .string(let text): return text
            case .null: return nil
            default: throw UsageEventWireError(message: "not a usage event: '\(key)' is not a string")
            }
        }
        func integer() throws -> Int64? {
            switch value {
            case .integer(let number): return number
            case .null: return nil
            default: throw UsageEventWireError(message: "not a usage event: '\(key)' is not an integer")
            }
        }
        func bool() throws -> Bool? {
            switch value {
            case .bool(let flag): return flag
            case .null: return nil
            default: throw UsageEventWireError(message: "not a usage event: '\(key)' is not a boolean")
            }
        }
        switch key {
        case "request_id": requestID = try string()
        case "tenant_id": tenantID = try string()
        case "tenant_key_id": tenantKeyID = try string()
        case "user_id": userID = try string()
        case "model": model = try string()
        case "deployment": deployment = try string()
        case "provider": provider = try string()
        case "provider_key_id": providerKeyID = try string()
        case "engine_pool": enginePool = try string()
        case "currency": currency = try string()
        case "error_type": errorType = try string()
        case "prompt_tokens": promptTokens = try integer()
        case "cached_tokens": cachedTokens = try integer()
        case "completion_tokens": completionTokens = try integer()
        case "reasoning_tokens": reasoningTokens = try integer()
        case "cost_micros": costMicros = try integer()
        case "status": status = try integer()
        case "started_at": startedAt = try integer()
        case "ttft_ms": ttft = try integer()
        case "duration_ms": duration = try integer()
        case "queue_ms": queue = try integer()
        case "slot_ms": slot = try integer()
        case "quota_tokens": quotaTokens = try integer()
        case "overage_per_million": overagePerMillion = try integer()
        case "tokens_estimated": tokensEstimated = try bool()
        case "streamed": streamed = try bool()
        case "client_aborted": clientAborted = try bool()
        case "spilled": spilled = try bool()
        case "billed_terms": billedTerms = try bool()
        default: break
        }
    }
}

/// Reads the wire form: one flat JSON object whose values are strings, integers, booleans
/// or null (what ``UsageEvent/wireJSON()`` writes). Anything else is refused. Hand-written
/// because the meter reads every event of every replica: a general-purpose decoder costs
/// several times more.
private struct WireReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    private func fail(_ what: String) -> UsageEventWireError {
        UsageEventWireError(message: "not a usage event: \(what) at byte \(index)")
    }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    mutating func read(into fields: inout WireFields) throws {
        try expect(UInt8(ascii: "{"))
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipSpace()
                let key = try string()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                guard index < bytes.count else { throw fail("a value is missing") }
                let value: WireValue
                switch bytes[index] {
                case UInt8(ascii: "\""): value = .string(try string())
                case UInt8(ascii: "t"): try literal("true"); value = .bool(true)
                case UInt8(ascii: "f"): try literal("false"); value = .bool(false)
                case UInt8(ascii: "n"): try literal("null"); value = .null
                default: value = .integer(try integer())
                }
                try fields.set(key, value)
                skipSpace()
                guard index < bytes.count else { throw fail("the object is cut off") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; break }
                throw fail("expected ',' or '}'")
            }
        }
        skipSpace()
        guard index == bytes.count else { throw fail("bytes after the object") }
    }

    private mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("a value is cut off") }
        let matches = word.withUTF8Buffer { expected in
            (0..<count).allSatisfy { bytes[index + $0] == expected[$0] }
        }
        guard matches else { throw fail("an unknown value") }
        index += count
    }

    private mutating func integer() throws -> Int64 {
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let start = index
        var value: Int64 = 0
        while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let digit = Int64(bytes[index] - UInt8(ascii: "0"))
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { throw fail("an integer out of range") }
            value = sum
            index += 1
        }
        guard index > start else { throw fail("not a string, integer, boolean or null") }
        return value
    }

    private mutating func string() throws -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        index += 1
        let start = index
        // The common case: no escapes, one copy straight into the String.
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
            guard bytes[index] >= 0x20 else { throw fail("a control character in a string") }
            index += 1
        }
        guard index < bytes.count else { throw fail("a string is cut off") }
        if bytes[index] == UInt8(ascii: "\"") {
            defer { index += 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        }
        var scalars = Array(bytes[start..<index])
        while true {
            guard index < bytes.count else { throw fail("a string is cut off") }
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") { break }
            guard byte == UInt8(ascii: "\\") else {
                guard byte >= 0x20 else { throw fail("a control character in a string") }
                scalars.append(byte)
                continue
            }
            guard index < bytes.count else { throw fail("a string is cut off") }
            let escaped = bytes[index]
            index += 1
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escaped)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code) {
                    // A surrogate pair: the low half must follow.
                    guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw fail("a lone surrogate")
                    }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail("an invalid escape") }
                scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
            default: throw fail("an invalid escape")
            }
        }
        return String(decoding: scalars, as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("an escape is cut off") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw fail("an invalid escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
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
