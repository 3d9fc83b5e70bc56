/// A validating, non-allocating scanner over JSON text that reports where the members of
/// an object lie, so callers can read the few fields they need and splice the rest
/// through unchanged instead of decoding and re-encoding whole documents.
///
/// Offsets are relative to the start of the scanned bytes.
public struct JSONScanner {
    /// One `"key": value` member of an object.
    public struct Member: Sendable, Equatable {
        /// The bytes of the key, without its quotes and still escaped.
        public var key: Range<Int>
        /// Whether the raw key contains escapes and must be decoded to be compared.
        public var keyIsEscaped: Bool
        /// The bytes of the value, from its first to its last byte.
        public var value: Range<Int>
        /// From the key's opening quote to the value's last byte.
        public var whole: Range<Int>
    }

    /// What kind of value starts at an offset.
    public enum ValueKind: Sendable, Equatable {
        case object, array, string, number, bool, null
    }

    public static let maximumDepth = 128

    let bytes: UnsafeRawBufferPointer

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: Documents

    /// Validates a whole document that must be an object and returns its members.
    public func topLevelMembers() throws(JSONScanError) -> [Member] {
        var index = skipWhitespace(from: 0)
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else {
            throw JSONScanError(.notAnObject, offset: index)
        }
        var members: [Member] = []
        index = try scanObject(from: index, depth: 1) { members.append($0) }
        index = skipWhitespace(from: index)
        guard index == bytes.count else { throw JSONScanError(.trailingCharacters, offset: index) }
        return members
    }

    /// Returns the members of the (already validated) object whose bytes are `range`.
    public func members(ofObjectAt range: Range<Int>) throws(JSONScanError) -> [Member] {
        guard range.lowerBound < bytes.count, bytes[range.lowerBound] == UInt8(ascii: "{") else {
            throw JSONScanError(.notAnObject, offset: range.lowerBound)
        }
        var members: [Member] = []
        _ = try scanObject(from: range.lowerBound, depth: 1) { members.append($0) }
        return members
    }

    /// Validates a whole document of any kind.
    public func validateDocument() throws(JSONScanError) {
        var index = skipWhitespace(from: 0)
        index = try scanValue(from: index, depth: 0)
        index = skipWhitespace(from: index)
        guard index == bytes.count else { throw JSONScanError(.trailingCharacters, offset: index) }
    }

    /// Counts the elements of the (already validated) array whose bytes are `range`.
    public func countElements(ofArrayAt range: Range<Int>) throws(JSONScanError) -> Int {
        var index = range.lowerBound + 1
        index = skipWhitespace(from: index)
        guard index < range.upperBound else { throw JSONScanError(.unexpectedEnd, offset: index) }
        if bytes[index] == UInt8(ascii: "]") { return 0 }
        var count = 0
        while true {
            index = try scanValue(from: index, depth: 1)
            count += 1
            index = skipWhitespace(from: index)
            guard index < bytes.count else { throw JSONScanError(.unexpectedEnd, offset: index) }
            if bytes[index] == UInt8(ascii: "]") { return count }
            guard bytes[index] == UInt8(ascii: ",") else { throw JSONScanError(.unexpectedCharacter, offset: index) }
            index = skipWhitespace(from: index + 1)
        }
    }

    // MARK: Values

    public func kind(at offset: Int) -> ValueKind? {
        guard offset < bytes.count else { return nil }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return .bool
        case UInt8(ascii: "n"): return .null
        default: return .number
        }
    }

    /// Compares a member's key to an ASCII name without allocating.
    public func key(_ member: Member, equals name: StaticString) -> Bool {
        if member.keyIsEscaped {
            return decodeString(contentsOf: member.key) == name.description
        }
        guard member.key.count == name.utf8CodeUnitCount else { return false }
        let start = name.utf8Start
        for offset in 0..<member.key.count where bytes[member.key.lowerBound + offset] != start[offset] {
            return false
        }
        return true
    }

    /// The decoded string value at `range` (which includes the quotes), or nil if it is no string.
    public func string(at range: Range<Int>) -> String? {
        guard kind(at: range.lowerBound) == .string, range.count >= 2 else { return nil }
        return decodeString(contentsOf: (range.lowerBound + 1)..<(range.upperBound - 1))
    }

    public func bool(at range: Range<Int>) -> Bool? {
        switch bytes[range.lowerBound] {
        case UInt8(ascii: "t"): return true
        case UInt8(ascii: "f"): return false
        default: return nil
        }
    }

    /// The value as a non-negative or negative integer, or nil if it is not an integer
    /// that fits in `Int` (a number with a fraction or exponent is not an integer).
    public func integer(at range: Range<Int>) -> Int? {
        var index = range.lowerBound
        var negative = false
        if bytes[index] == UInt8(ascii: "-") { negative = true; index += 1 }
        guard index < range.upperBound else { return nil }
        // Accumulated as a negative number, whose range reaches Int.min.
        var value = 0
        while index < range.upperBound {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (multiplied, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (added, overflow2) = multiplied.subtractingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = added
            index += 1
        }
        if negative { return value }
        return value == Int.min ? nil : -value
    }

    public func isNull(at range: Range<Int>) -> Bool {
        bytes[range.lowerBound] == UInt8(ascii: "n")
    }
}
