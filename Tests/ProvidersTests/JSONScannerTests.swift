import Foundation
import Testing

@testable import Providers

@Suite("JSONScanner")
struct JSONScannerTests {
    // MARK: Helpers

    /// The error `validateDocument` throws for `json`, or nil when it accepts it.
    private func documentError(_ json: String) -> JSONScanError? {
        withScanner(json) { scanner -> JSONScanError? in
            do throws(JSONScanError) {
                try scanner.validateDocument()
                return nil
            } catch {
                return error
            }
        }
    }

    /// The error `topLevelMembers` throws for `json`, or nil when it accepts it.
    private func objectError(_ json: String) -> JSONScanError? {
        withScanner(json) { scanner -> JSONScanError? in
            do throws(JSONScanError) {
                _ = try scanner.topLevelMembers()
                return nil
            } catch {
                return error
            }
        }
    }

    private func slice(_ json: String, _ range: Range<Int>) -> String {
        String(decoding: Array(json.utf8)[range], as: UTF8.self)
    }

    /// The members of a top-level object as (raw key, raw value, raw whole) text.
    private func memberTexts(_ json: String) throws -> [(key: String, value: String, whole: String)] {
        let members = try withScanner(json) { try $0.topLevelMembers() }
        return members.map { (slice(json, $0.key), slice(json, $0.value), slice(json, $0.whole)) }
    }

    /// The value range of the member named `name` in the top-level object of `json`.
    private func valueOf(_ name: StaticString, in json: String, _ body: (JSONScanner, Range<Int>) -> Void) throws {
        try withScanner(json) { scanner in
            let members = try scanner.topLevelMembers()
            let member = try #require(members.first { scanner.key($0, equals: name) }, "no member \(name)")
            body(scanner, member.value)
        }
    }

    private func decodedString(_ json: String) throws -> String? {
        try withScanner(json) { scanner in
            try scanner.validateDocument()
            return scanner.string(at: 0..<json.utf8.count)
        }
    }

    private func integer(_ json: String) throws -> Int? {
        try withScanner(json) { scanner in
            try scanner.validateDocument()
            return scanner.integer(at: 0..<json.utf8.count)
        }
    }

    // MARK: Valid documents

    @Test(
        "accepts a document of every value kind",
        arguments: [
            "{}", "[]", #""""#, #""text""#, "0", "-0", "7", "-12", "3.25", "-0.5", "1e10", "1E+2", "2.5e-3",
            "true", "false", "null", " \t\r\n{ } \n", "[1, \"two\", 3.0, true, false, null, {}, []]",
            #"{"a":{"b":{"c":[{"d":null}]}},"e":[[],[[]]],"f":"\u00e9\ud83d\ude00\n"}"#,
            "\"h\u{e9}llo \u{1F600}\"",
        ]
    )
    func acceptsValidDocuments(json: String) {
        #expect(documentError(json) == nil)
    }

    @Test(
        "reports the kind of the value at an offset",
        arguments: [
            ("{}", JSONScanner.ValueKind.object), ("[1]", .array), (#""s""#, .string), ("-1", .number),
            ("0.5", .number), ("true", .bool), ("false", .bool), ("null", .null),
        ]
    )
    func kinds(json: String, kind: JSONScanner.ValueKind) {
        withScanner(json) { scanner in
            #expect(scanner.kind(at: 0) == kind)
            #expect(scanner.kind(at: json.utf8.count) == nil)
        }
    }

    // MARK: Members

    @Test("lists the members of an object with their key, value and whole ranges")
    func memberRanges() throws {
        let json = #"{ "model" : "gpt-4o" ,"n":12,"list":[1, [2], {"x":3}],"obj":{"inner":true},"none":null }"#
        let members = try memberTexts(json)
        #expect(members.map(\.key) == ["model", "n", "list", "obj", "none"])
        #expect(members.map(\.value) == [#""gpt-4o""#, "12", #"[1, [2], {"x":3}]"#, #"{"inner":true}"#, "null"])
        #expect(members.map(\.whole) == [
            #""model" : "gpt-4o""#, #""n":12"#, #""list":[1, [2], {"x":3}]"#, #""obj":{"inner":true}"#, #""none":null"#,
        ])
    }

    @Test("the empty object has no members")
    func emptyObject() throws {
        #expect(try withScanner("{}") { try $0.topLevelMembers() }.isEmpty)
        #expect(try withScanner(" { \n } ") { try $0.topLevelMembers() }.isEmpty)
    }

    @Test("compares keys exactly, decoding escaped ones")
    func keyComparison() throws {
        let json = #"{"mo\u0064el":"a","a\"b":1,"mode":2,"models":3,"stream":4}"#
        try withScanner(json) { scanner in
            let members = try scanner.topLevelMembers()
            #expect(members.count == 5)
            #expect(members.map(\.keyIsEscaped) == [true, true, false, false, false])
            #expect(scanner.key(members[0], equals: "model"))
            #expect(scanner.decodeString(contentsOf: members[1].key) == "a\"b")
            #expect(scanner.key(members[1], equals: "a\"b"))
            #expect(!scanner.key(members[2], equals: "model"))
            #expect(!scanner.key(members[3], equals: "model"))
            #expect(scanner.key(members[4], equals: "stream"))
            #expect(!scanner.key(members[4], equals: "strea"))
        }
    }

    @Test("reads the members of a nested object in place")
    func nestedMembers() throws {
        let json = #"{"outer":{"a":1,"deeper":{"b":[true]}},"z":0}"#
        try withScanner(json) { scanner in
            let top = try scanner.topLevelMembers()
            let outer = try scanner.members(ofObjectAt: top[0].value)
            #expect(outer.map { slice(json, $0.key) } == ["a", "deeper"])
            let deeper = try scanner.members(ofObjectAt: outer[1].value)
            #expect(deeper.map { slice(json, $0.value) } == ["[true]"])
            // Offsets stay relative to the whole document.
            #expect(slice(json, deeper[0].whole) == #""b":[true]"#)
            #expect(throws: JSONScanError.self) { try scanner.members(ofObjectAt: top[1].value) }
        }
    }

    @Test("a document that is not an object has no top-level members", arguments: ["[1]", #""x""#, "1", "null", "", "   "])
    func notAnObject(json: String) {
        #expect(objectError(json)?.reason == .notAnObject)
    }

    // MARK: Malformed documents

    @Test(
        "rejects malformed JSON",
        arguments: [
            (#"{"a":1,}"#, JSONScanError.Reason.expectedKey),
            ("[1,]", .unexpectedCharacter),
            ("[1 2]", .unexpectedCharacter),
            (#"{"a" 1}"#, .expectedColon),
            ("{a:1}", .expectedKey),
            (#"{"a":1 "b":2}"#, .unexpectedCharacter),
            (#"{"a":}"#, .unexpectedCharacter),
            (#"{"a":1"#, .unexpectedEnd),
            ("[", .unexpectedEnd),
            ("", .unexpectedEnd),
            (#""abc"#, .unexpectedEnd),
            (#"{"abc"#, .unexpectedEnd),
            (#""ab\"#, .unexpectedEnd),
            (#""\x""#, .invalidEscape),
            (#""\u12G4""#, .invalidEscape),
            (#""\U0041""#, .invalidEscape),
            (#""\'""#, .invalidEscape),
            ("\"a\tb\"", .controlCharacterInString),
            ("\"a\nb\"", .controlCharacterInString),
            ("\"\u{0}\"", .controlCharacterInString),
            ("\"\u{1F}\"", .controlCharacterInString),
            ("01", .trailingCharacters),
            ("-01", .trailingCharacters),
            ("00", .trailingCharacters),
            (#"{"a":01}"#, .unexpectedCharacter),
            ("[01]", .unexpectedCharacter),
            ("-", .invalidNumber),
            ("-a", .invalidNumber),
            ("1.", .invalidNumber),
            ("1.e5", .invalidNumber),
            ("1e", .invalidNumber),
            ("1e+", .invalidNumber),
            ("1E-", .invalidNumber),
            ("[1.]", .invalidNumber),
            (".5", .unexpectedCharacter),
            ("+1", .unexpectedCharacter),
            (#"{"a":1} x"#, .trailingCharacters),
            ("{}{}", .trailingCharacters),
            ("[] ,", .trailingCharacters),
            ("tru", .unexpectedEnd),
            ("trux", .unexpectedCharacter),
            ("nul", .unexpectedEnd),
            ("fals3", .unexpectedCharacter),
            ("True", .unexpectedCharacter),
            ("NaN", .unexpectedCharacter),
            ("'a'", .unexpectedCharacter),
        ]
    )
    func rejectsMalformed(json: String, reason: JSONScanError.Reason) {
        #expect(documentError(json)?.reason == reason)
        // Whatever the reason, Foundation agrees the text is not JSON (except for trailing
        // commas, which Foundation's parser tolerates and Switchyard's does not).
        if !json.contains(",}"), !json.contains(",]") {
            #expect((try? foundationJSON(Array(json.utf8))) == nil)
        }
    }

    @Test(
        "rejects malformed objects at the top level",
        arguments: [
            #"{"a":1,}"#, #"{"a":"b"#, #"{"a":"\q"}"#, "{\"a\":\"\u{7}\"}", #"{"a":01}"#, #"{"a":-}"#, #"{"a":1.}"#,
            #"{"a":1e}"#, #"{"a":1}}"#, #"{"a":1},"#, #"{"a":[1,]}"#, #"{"a":{"b":1,}}"#, #"{"a":tru}"#,
        ]
    )
    func rejectsMalformedObjects(json: String) {
        #expect(objectError(json) != nil)
    }

    @Test("reports where the error is")
    func errorOffset() {
        #expect(documentError(#"{"a":1,}"#) == JSONScanError(.expectedKey, offset: 7))
        #expect(documentError(#"{"a":1} x"#) == JSONScanError(.trailingCharacters, offset: 8))
        #expect(documentError(#"["ok","\x"]"#) == JSONScanError(.invalidEscape, offset: 7))
        #expect(JSONScanError(.invalidNumber, offset: 3).description == "invalid number at byte 3")
    }

    // MARK: Depth

    @Test("accepts nesting up to maximumDepth and rejects one level more")
    func depthLimit() {
        let depth = JSONScanner.maximumDepth
        let arrays = { (n: Int) in String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        #expect(documentError(arrays(depth)) == nil)
        #expect(documentError(arrays(depth + 1))?.reason == .tooDeep)

        let objects = { (n: Int) in String(repeating: #"{"a":"#, count: n) + "1" + String(repeating: "}", count: n) }
        #expect(objectError(objects(depth)) == nil)
        #expect(objectError(objects(depth + 1))?.reason == .tooDeep)
        #expect(documentError(objects(depth + 1))?.reason == .tooDeep)

        let mixed = { (n: Int) in String(repeating: #"{"a":["#, count: n) + String(repeating: "]}", count: n) }
        #expect(objectError(mixed(depth / 2)) == nil)
        #expect(objectError(mixed(depth / 2 + 1))?.reason == .tooDeep)
    }

    @Test("rejects absurdly deep documents without exhausting the stack")
    func veryDeep() {
        let json = String(repeating: "[", count: 200_000)
        #expect(documentError(json)?.reason == .tooDeep)
        #expect(objectError("{\"a\":" + json)?.reason == .tooDeep)
    }

    // MARK: Values

    @Test(
        "integer() reads integers that fit in Int",
        arguments: [
            ("0", 0), ("-0", 0), ("7", 7), ("-42", -42), ("1234567890", 1_234_567_890),
            ("9223372036854775807", Int.max), ("-9223372036854775807", -Int.max),
        ]
    )
    func integers(json: String, value: Int) throws {
        #expect(try integer(json) == value)
    }

    @Test(
        "integer() is nil for overflow, fractions, exponents and non-numbers",
        arguments: [
            "9223372036854775808", "-9223372036854775809", "99999999999999999999", "1.5", "1.0", "-0.5", "1e3",
            "1E+2", #""5""#, "true", "null", "[1]",
        ]
    )
    func notIntegers(json: String) throws {
        #expect(try integer(json) == nil)
    }

    @Test(
        "integer() reads Int.min",
    )
    func integerMinimum() throws {
        #expect(try integer("-9223372036854775808") == Int.min)
    }

    @Test("integer() reads a value inside a document")
    func integerInDocument() throws {
        let json = #"{"a":42,"b":-7,"c":1.5,"d":1e3,"e":"5","f":0}"#
        var read: [Int?] = []
        for name: StaticString in ["a", "b", "c", "d", "e", "f"] {
            try valueOf(name, in: json) { scanner, range in read.append(scanner.integer(at: range)) }
        }
        #expect(read == [42, -7, nil, nil, nil, 0])
    }

    @Test(
        "string() decodes escapes and UTF-8",
        arguments: [
            (#""plain""#, "plain"),
            (#""""#, ""),
            (#""a\nb""#, "a\nb"),
            (#""\u00e9""#, "\u{e9}"),
            (#""\u00E9t\u00e9""#, "\u{e9}t\u{e9}"),
            (#""\ud83d\ude00""#, "\u{1F600}"),
            (#""x\uD83D\uDE00y""#, "x\u{1F600}y"),
            (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
            ("\"caf\u{e9} \u{1F600}\"", "caf\u{e9} \u{1F600}"),
            ("\"\u{e9}\\n\u{4E2D}\\u00e9\u{1F600}\\t\"", "\u{e9}\n\u{4E2D}\u{e9}\u{1F600}\t"),
            (#""\u0041\u0000z""#, "A\u{0}z"),
        ]
    )
    func strings(json: String, expected: String) throws {
        #expect(try decodedString(json) == expected)
        // Foundation decodes the text the same way.
        #expect(try foundationJSON(Array(json.utf8)) as? String == expected)
    }

    @Test(
        "string() replaces unpaired surrogates with U+FFFD",
        arguments: [
            (#""lone \ud83d high""#, "lone \u{FFFD} high"),
            (#""lone \ude00 low""#, "lone \u{FFFD} low"),
            (#""\ud83d\u0041""#, "\u{FFFD}A"),
            (#""\ud83d\ud83d\ude00""#, "\u{FFFD}\u{1F600}"),
            (#""end \ud83d""#, "end \u{FFFD}"),
        ]
    )
    func unpairedSurrogates(json: String, expected: String) throws {
        #expect(try decodedString(json) == expected)
    }

    @Test("string() is nil for a value that is no string")
    func notStrings() throws {
        let json = #"{"n":1,"b":true,"o":{},"a":["x"],"z":null}"#
        for name: StaticString in ["n", "b", "o", "a", "z"] {
            try valueOf(name, in: json) { scanner, range in #expect(scanner.string(at: range) == nil) }
        }
    }

    @Test("bool() and isNull() read literals")
    func literals() throws {
        let json = #"{"t":true,"f":false,"n":null,"s":"true"}"#
        try valueOf("t", in: json) { scanner, range in
            #expect(scanner.bool(at: range) == true)
            #expect(!scanner.isNull(at: range))
        }
        try valueOf("f", in: json) { scanner, range in #expect(scanner.bool(at: range) == false) }
        try valueOf("n", in: json) { scanner, range in
            #expect(scanner.bool(at: range) == nil)
            #expect(scanner.isNull(at: range))
        }
        try valueOf("s", in: json) { scanner, range in #expect(scanner.bool(at: range) == nil) }
    }

    @Test(
        "countElements counts the top-level elements of an array",
        arguments: [
            ("[]", 0), ("[ \n ]", 0), ("[1]", 1), (#"[1, [2, 3], {"a": [4, 5]}, "x,y]", null]"#, 5),
            (#"[{"choices":[]},{}]"#, 2), ("[[[[]]]]", 1),
        ]
    )
    func countElements(array: String, count: Int) throws {
        let json = #"{"before":[9,9,9],"list":"# + array + #","after":[8]}"#
        try valueOf("list", in: json) { scanner, range in
            #expect((try? scanner.countElements(ofArrayAt: range)) == count)
        }
    }

    // MARK: UTF-8

    private func bytesError(_ bytes: [UInt8]) -> JSONScanError? {
        bytes.withUnsafeBytes { raw -> JSONScanError? in
            do throws(JSONScanError) {
                try JSONScanner(raw).validateDocument()
                return nil
            } catch {
                return error
            }
        }
    }

    @Test(
        "strings must be valid UTF-8: no stray continuation, truncated, overlong, surrogate or out-of-range sequences",
        arguments: [
            [0x80], [0xBF], [0xC0, 0xAF], [0xC1, 0xBF], [0xC3], [0xE2, 0x82], [0xE0, 0x80, 0xAF],
            [0xED, 0xA0, 0x80], [0xF0, 0x80, 0x80, 0xAF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE],
            [0xC3, 0x28], [0xE2, 0x28, 0xA1],
        ] as [[UInt8]]
    )
    func invalidUTF8(sequence: [UInt8]) throws {
        let document = Array(#"{"content":"ok "#.utf8) + sequence + Array(#" end"}"#.utf8)
        let error = try #require(bytesError(document))
        #expect(error.reason == .invalidUTF8)
        #expect(error.offset == 15, "at the first byte of the bad sequence")
    }

    @Test("valid multi-byte UTF-8 of every length is accepted")
    func validUTF8() {
        for text in ["é", "€", "𝄞", "日本語", "\u{10FFFF}", "\u{D7FF}", "\u{E000}"] {
            #expect(bytesError(Array(#"{"k":"\#(text)"}"#.utf8)) == nil, "\(text)")
        }
    }
}

