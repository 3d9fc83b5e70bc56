import Foundation
import FuzzSupport
@testable import Providers

// Input: JSON text, scanned in place from libFuzzer's own allocation (so AddressSanitizer
// sees a read past the end).
//
// Checked: `validateDocument` and `topLevelMembers` agree; they accept what Foundation
// accepts (short of nesting deeper than `maximumDepth`) and accept nothing Foundation
// rejects, for UTF-8 text without surrogate escapes, whose handling differs by design;
// then every value of an accepted document is visited with each entry point the parsers
// use (`members(ofObjectAt:)`, `elements`/`countElements(ofArrayAt:)`, `key(_:equals:)`,
// `string`, `integer`, `bool`, `isNull`, `isNullOrEmptyString`, `isString`, `raw`), whose
// answers must agree with each other, with Foundation and with the standard library.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSONScanner(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
    let scanner = JSONScanner(raw)

    var documentError: JSONScanError?
    do { try scanner.validateDocument() } catch { documentError = error }
    let members = try? scanner.topLevelMembers()
    let first = raw.firstIndex { !isWhitespace($0) }
    let last = raw.lastIndex { !isWhitespace($0) }

    if members != nil {
        invariant(documentError == nil, "topLevelMembers accepted what validateDocument rejects (\(String(describing: documentError)))")
    }
    if documentError == nil, let first, raw[first] == UInt8(ascii: "{") {
        invariant(members != nil, "validateDocument accepted an object that topLevelMembers rejects")
    }
    compareWithFoundation(raw, documentError: documentError)

    guard documentError == nil, let first, let last else { return 0 }
    var walk = Walk(scanner: scanner, raw: raw)
    walk.value(at: first..<(last + 1), depth: 0)
    if let members {
        invariant(members == (try? scanner.members(ofObjectAt: first..<(last + 1))), "topLevelMembers and members(ofObjectAt:) disagree")
    }
    return 0
}

private func isWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
}

private func compareWithFoundation(_ raw: UnsafeRawBufferPointer, documentError: JSONScanError?) {
    guard JSONOracle.readsAsUTF8(raw) else { return }
    let foundationAccepts = JSONOracle.isValid(raw)
    if foundationAccepts, let documentError, documentError.reason != .tooDeep, !containsTrailingComma(raw) {
        invariant(false, "the scanner rejects JSON that Foundation reads (\(documentError)): \(describe(raw))")
    }
    if documentError == nil, !foundationAccepts,
       String(validating: raw, as: UTF8.self) != nil, !containsSurrogateEscape(raw), !containsHugeNumber(raw) {
        invariant(false, "the scanner accepts text that Foundation rejects: \(describe(raw))")
    }
}

/// Whether a comma outside strings is followed by `}` or `]`: Foundation accepts such
/// trailing commas, JSON (and the scanner) does not.
private func containsTrailingComma(_ raw: UnsafeRawBufferPointer) -> Bool {
    var inString = false
    var escaped = false
    for (index, byte) in raw.enumerated() {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == 0x22 { inString = false }
            continue
        }
        if byte == 0x22 { inString = true }
        guard byte == UInt8(ascii: ",") else { continue }
        let next = raw[(index + 1)...].first { !isWhitespace($0) }
        if next == UInt8(ascii: "}") || next == UInt8(ascii: "]") { return true }
    }
    return false
}

/// Whether the text may hold a number beyond `Double`'s range, which Foundation rejects
/// and the scanner, which never converts numbers, accepts: an exponent, or 300 digits.
private func containsHugeNumber(_ raw: UnsafeRawBufferPointer) -> Bool {
    var digits = 0
    var previousIsDigit = false
    for byte in raw {
        let isDigit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        if previousIsDigit, byte | 0x20 == UInt8(ascii: "e") { return true }
        digits = isDigit ? digits + 1 : 0
        if digits >= 300 { return true }
        previousIsDigit = isDigit
    }
    return false
}

/// Whether the text has a `\uD800`…`\uDFFF` escape: the scanner decodes a lone one as
/// U+FFFD, where Foundation rejects the document.
private func containsSurrogateEscape(_ raw: UnsafeRawBufferPointer) -> Bool {
    guard raw.count >= 6 else { return false }
    for index in 0...(raw.count - 6) where raw[index] == UInt8(ascii: "\\") && raw[index + 1] == UInt8(ascii: "u") {
        if raw[index + 2] | 0x20 == UInt8(ascii: "d"), (UInt8(ascii: "8")...UInt8(ascii: "9")).contains(raw[index + 3])
            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(raw[index + 3] | 0x20) {
            return true
        }
    }
    return false
}

/// Visits every value of a validated document.
private struct Walk {
    let scanner: JSONScanner
    let raw: UnsafeRawBufferPointer
    /// Values visited; a document of many tiny values is walked only so far.
    var budget = 4096

    static let names: [StaticString] = ["model", "stream", "usage", "choices", "delta", "id", "type", "index", "", "a"]

    mutating func value(at range: Range<Int>, depth: Int) {
        budget -= 1
        guard budget > 0 else { return }
        invariant(!range.isEmpty && range.upperBound <= raw.count, "a value range \(range) outside the text (\(raw.count) bytes)")
        let text = Array(raw[range])
        invariant(scanner.raw(range) == text, "raw(\(range)) is not the bytes there")
        let kind = scanner.kind(at: range.lowerBound)
        invariant((kind == .null) == scanner.isNull(at: range), "isNull disagrees with kind \(String(describing: kind))")
        invariant((scanner.bool(at: range) != nil) == (kind == .bool), "bool disagrees with kind \(String(describing: kind))")
        invariant((scanner.string(at: range) != nil) == (kind == .string), "string disagrees with kind \(String(describing: kind))")
        invariant(
            scanner.isNullOrEmptyString(at: range) == (kind == .null || text == [0x22, 0x22]),
            "isNullOrEmptyString wrong for \(describe(text))"
        )
        invariant(scanner.isString(at: range, "stop") == (text == Array(#""stop""#.utf8)), "isString(\"stop\") wrong for \(describe(text))")
        let integer = scanner.integer(at: range)
        switch kind {
        case .object:
            object(at: range, depth: depth)
        case .array:
            array(at: range, depth: depth)
        case .string:
            string(at: range)
        case .number:
            // A JSON integer is an integer literal the standard library reads the same way.
            let expected = text.allSatisfy { $0 == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
                ? Int(String(decoding: text, as: UTF8.self)) : nil
            invariant(integer == expected, "integer(at:) is \(String(describing: integer)) for \(describe(text)), Int() says \(String(describing: expected))")
        case .bool:
            invariant(scanner.bool(at: range) == (text == Array("true".utf8)), "bool(at:) wrong for \(describe(text))")
            invariant(text == Array("true".utf8) || text == Array("false".utf8), "a bool that is neither true nor false: \(describe(text))")
        case .null:
            invariant(text == Array("null".utf8), "a null that is not null: \(describe(text))")
        case nil:
            invariant(false, "no kind at \(range.lowerBound)")
        }
        if kind != .number { invariant(integer == nil, "integer(at:) read a \(String(describing: kind))") }
    }

    private mutating func object(at range: Range<Int>, depth: Int) {
        let members: [JSONScanner.Member]
        do {
            members = try scanner.members(ofObjectAt: range)
        } catch {
            invariant(false, "members(ofObjectAt:) throws \(error) for a validated object")
            return
        }
        var previousEnd = range.lowerBound + 1
        for member in members {
            invariant(
                member.whole.lowerBound >= previousEnd && member.whole.upperBound < range.upperBound
                    && member.key.lowerBound == member.whole.lowerBound + 1 && member.value.upperBound == member.whole.upperBound
                    && member.key.upperBound < member.value.lowerBound
                    && raw[member.whole.lowerBound] == 0x22 && raw[member.key.upperBound] == 0x22,
                "member ranges out of place: \(member) in \(range)"
            )
            previousEnd = member.whole.upperBound
            let key = scanner.string(at: (member.key.lowerBound - 1)..<(member.key.upperBound + 1))
            invariant(key != nil, "a member key that is no string")
            invariant(member.keyIsEscaped == raw[member.key].contains(UInt8(ascii: "\\")), "keyIsEscaped wrong for \(member)")
            for name in Self.names {
                invariant(
                    scanner.key(member, equals: name) == (key == name.description),
                    "key(_:equals: \"\(name)\") disagrees with the decoded key \(String(describing: key))"
                )
            }
            value(at: member.value, depth: depth + 1)
        }
        invariant(raw[range.upperBound - 1] == UInt8(ascii: "}"), "an object that does not end with }")
    }

    private mutating func array(at range: Range<Int>, depth: Int) {
        let elements: [Range<Int>]
        let count: Int
        do {
            elements = try scanner.elements(ofArrayAt: range)
            count = try scanner.countElements(ofArrayAt: range)
        } catch {
            invariant(false, "elements/countElements(ofArrayAt:) throw \(error) for a validated array")
            return
        }
        invariant(elements.count == count, "countElements says \(count), elements finds \(elements.count)")
        var previousEnd = range.lowerBound + 1
        for element in elements {
            invariant(element.lowerBound >= previousEnd && element.upperBound < range.upperBound, "element \(element) out of place in \(range)")
            previousEnd = element.upperBound
            value(at: element, depth: depth + 1)
        }
        invariant(raw[range.upperBound - 1] == UInt8(ascii: "]"), "an array that does not end with ]")
    }

    private func string(at range: Range<Int>) {
        // Foundation drops a U+FEFF that starts a string's contents; JSON keeps it.
        guard let decoded = scanner.string(at: range), !decoded.unicodeScalars.contains("\u{FEFF}") else { return }
        let bytes = raw[range]
        guard JSONOracle.readsAsUTF8(UnsafeRawBufferPointer(rebasing: bytes)),
              let expected = JSONOracle.value(bytes) as? String
        else { return }
        invariant(decoded.unicodeScalars.elementsEqual(expected.unicodeScalars), "string(at:) decodes \(describe(bytes)) as \(decoded.debugDescription), Foundation as \(expected.debugDescription)")
    }
}
