extension JSONScanner {
    // MARK: Grammar

    func skipWhitespace(from start: Int) -> Int {
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return index
            }
        }
        return index
    }

    /// Scans the value starting at `start` and returns the offset just past it.
    func scanValue(from start: Int, depth: Int) throws(JSONScanError) -> Int {
        guard start < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: start) }
        switch bytes[start] {
        case UInt8(ascii: "{"): return try scanObject(from: start, depth: depth + 1) { _ in }
        case UInt8(ascii: "["): return try scanArray(from: start, depth: depth + 1)
        case UInt8(ascii: "\""): return try scanString(from: start).end
        case UInt8(ascii: "t"): return try scanLiteral("true", from: start)
        case UInt8(ascii: "f"): return try scanLiteral("false", from: start)
        case UInt8(ascii: "n"): return try scanLiteral("null", from: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try scanNumber(from: start)
        default: throw JSONScanError(.unexpectedCharacter, offset: start)
        }
    }

    func scanObject(
        from start: Int,
        depth: Int,
        _ onMember: (Member) -> Void
    ) throws(JSONScanError) -> Int {
        guard depth <= Self.maximumDepth else { throw JSONScanError(.tooDeep, offset: start) }
        var index = skipWhitespace(from: start + 1)
        guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
        if bytes[index] == UInt8(ascii: "}") { return index + 1 }
        while true {
            guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
            guard bytes[index] == UInt8(ascii: "\"") else { throw JSONScanError(.expectedKey, offset: index) }
            let keyStart = index
            let (keyEnd, escaped) = try scanString(from: index)
            index = skipWhitespace(from: keyEnd)
            guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
            guard bytes[index] == UInt8(ascii: ":") else { throw JSONScanError(.expectedColon, offset: index) }
            index = skipWhitespace(from: index + 1)
            let valueStart = index
            index = try scanValue(from: index, depth: depth)
            onMember(Member(
                key: (keyStart + 1)..<(keyEnd - 1),
                keyIsEscaped: escaped,
                value: valueStart..<index,
                whole: keyStart..<index
            ))
            index = skipWhitespace(from: index)
            guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
            if bytes[index] == UInt8(ascii: "}") { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { throw JSONScanError(.unexpectedCharacter, offset: index) }
            index = skipWhitespace(from: index + 1)
        }
    }

    func scanArray(from start: Int, depth: Int) throws(JSONScanError) -> Int {
        guard depth <= Self.maximumDepth else { throw JSONScanError(.tooDeep, offset: start) }
        var index = skipWhitespace(from: start + 1)
        guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
        if bytes[index] == UInt8(ascii: "]") { return index + 1 }
        while true {
            index = try scanValue(from: index, depth: depth)
            index = skipWhitespace(from: index)
            guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
            if bytes[index] == UInt8(ascii: "]") { return index + 1 }
            guard bytes[index] == UInt8(ascii: ",") else { throw JSONScanError(.unexpectedCharacter, offset: index) }
            index = skipWhitespace(from: index + 1)
        }
    }

    /// Scans a string starting at its opening quote; returns the offset past the closing
    /// quote and whether it held escapes.
    func scanString(from start: Int) throws(JSONScanError) -> (end: Int, escaped: Bool) {
        var index = start + 1
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                return (index + 1, escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                guard index + 1 < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard index + 5 < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
                    for offset in 2...5 where Self.hexValue(bytes[index + offset]) == nil {
                        throw JSONScanError(.invalidEscape, offset: index)
                    }
                    index += 6
                default:
                    throw JSONScanError(.invalidEscape, offset: index)
                }
            case 0x00..<0x20:
                throw JSONScanError(.controlCharacterInString, offset: index)
            case 0x80...:
                index = try scanUTF8Sequence(from: index)
            default:
                index += 1
            }
        }
        throw JSONScanError(.unexpectedEnd, offset: index)
    }

    /// Validates the multi-byte UTF-8 sequence starting at `start` (RFC 3629: no overlong
    /// forms, no surrogates, nothing above U+10FFFF) and returns the offset past it.
    func scanUTF8Sequence(from start: Int) throws(JSONScanError) -> Int {
        let lead = bytes[start]
        let length: Int
        var second: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; second = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; second = 0x80...0x9F
        case 0xF0: length = 4; second = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; second = 0x80...0x8F
        default: throw JSONScanError(.invalidUTF8, offset: start)
        }
        guard start + length <= bytes.count, second.contains(bytes[start + 1]) else {
            throw JSONScanError(.invalidUTF8, offset: start)
        }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[start + offset]) {
            throw JSONScanError(.invalidUTF8, offset: start)
        }
        return start + length
    }

    func scanNumber(from start: Int) throws(JSONScanError) -> Int {
        var index = start
        func digits() -> Int {
            let begin = index
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            return index - begin
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count else { throw JSONScanError(.invalidNumber, offset: start) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else if digits() == 0 {
            throw JSONScanError(.invalidNumber, offset: start)
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw JSONScanError(.invalidNumber, offset: start) }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw JSONScanError(.invalidNumber, offset: start) }
        }
        return index
    }

    func scanLiteral(_ literal: StaticString, from start: Int) throws(JSONScanError) -> Int {
        let count = literal.utf8CodeUnitCount
        guard start + count <= bytes.count else { throw JSONScanError(.unexpectedEnd, offset: start) }
        for offset in 0..<count where bytes[start + offset] != literal.utf8Start[offset] {
            throw JSONScanError(.unexpectedCharacter, offset: start)
        }
        return start + count
    }

    // MARK: Strings

    /// Decodes the escaped contents of a string (between its quotes).
    func decodeString(contentsOf range: Range<Int>) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
        guard raw.contains(UInt8(ascii: "\\")) else {
            return String(decoding: raw, as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        utf8.reserveCapacity(range.count)
        var index = range.lowerBound
        func flush() {
            if !utf8.isEmpty {
                scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
                utf8.removeAll(keepingCapacity: true)
            }
        }
        while index < range.upperBound {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < range.upperBound else {
                utf8.append(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var code = readHex4(at: index)
                index += 4
                if (0xD800..<0xDC00).contains(code), index + 5 < range.upperBound + 1,
                   bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") {
                    let low = readHex4(at: index + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                flush()
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: utf8.append(escape)
            }
        }
        flush()
        return String(scalars)
    }

    private func readHex4(at index: Int) -> UInt32 {
        guard index + 4 <= bytes.count else { return 0xFFFD }
        var value: UInt32 = 0
        for offset in 0..<4 {
            value = value << 4 | UInt32(Self.hexValue(bytes[index + offset]) ?? 0)
        }
        return value
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// Why a JSON document was rejected, and where.
public struct JSONScanError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case notAnObject = "expected a JSON object"
        case unexpectedEnd = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case expectedKey = "expected a string key"
        case expectedColon = "expected ':'"
        case invalidEscape = "invalid escape sequence"
        case controlCharacterInString = "unescaped control character in string"
        case invalidUTF8 = "invalid UTF-8"
        case invalidNumber = "invalid number"
        case trailingCharacters = "unexpected characters after the JSON value"
        case tooDeep = "nesting too deep"
    }

    public var reason: Reason
    public var offset: Int

    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String { "\(reason.rawValue) at byte \(offset)" }
}
