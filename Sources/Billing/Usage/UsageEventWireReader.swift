// The reading side of a usage event's wire form (UsageEvent+Wire.swift): the meter and the
// writer's start-up read every event through it.

/// The wire form could not be read as a usage event.
public struct UsageEventWireError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// One JSON value of the wire form.
enum WireValue {
    case string(String)
    case integer(Int64)
    case bool(Bool)
    case null
}

/// The fields of an event as they are read; a key it does not know is ignored (a newer
/// writer may add one), a known key with a value of the wrong kind is refused.
struct WireFields {
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
struct WireReader {
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
