import Foundation
import NIOCore
import Testing

@testable import Providers

/// The splicing under the engine quirk fixes.
@Suite("JSONEdits")
struct JSONEditsTests {
    private func removing(_ json: String, _ names: Set<String>) throws -> String {
        let bytes = Array(json.utf8)
        let edited = try bytes.withUnsafeBytes { raw -> [UInt8] in
            let scanner = JSONScanner(raw)
            let members = try scanner.topLevelMembers()
            var edits = JSONEdits()
            edits.removeMembers(of: members) { names.contains(scanner.decodeString(contentsOf: members[$0].key)) }
            return edits.applied(to: bytes)
        }
        #expect(throws: Never.self) { try foundationObject(edited) }
        return String(decoding: edited, as: UTF8.self)
    }

    @Test(
        "removing members leaves valid JSON wherever they sit, next to each other or not",
        arguments: [
            (["a"], #"{"b":2,"c":3,"d":4}"#),
            (["d"], #"{"a":1,"b":2,"c":3}"#),
            (["b", "c"], #"{"a":1,"d":4}"#),
            (["c", "d"], #"{"a":1,"b":2}"#),
            (["a", "b"], #"{"c":3,"d":4}"#),
            (["a", "c"], #"{"b":2,"d":4}"#),
            (["b", "d"], #"{"a":1,"c":3}"#),
            (["a", "b", "c", "d"], "{}"),
            ([], #"{"a":1,"b":2,"c":3,"d":4}"#),
        ]
    )
    func removeMembers(names: [String], expected: String) throws {
        #expect(try removing(#"{"a":1,"b":2,"c":3,"d":4}"#, Set(names)) == expected)
    }

    @Test("removing with whitespace around the commas")
    func removeWithWhitespace() throws {
        #expect(try removing(#"{ "a" : 1 , "b" : [1,2] , "c" : {"x":","} }"#, ["b", "c"]) == #"{ "a" : 1 }"#)
        #expect(try removing(#"{ "a" : 1 , "b" : 2 }"#, ["a"]) == #"{ "b" : 2 }"#)
    }

    @Test("inserted first members land before an edit at the same offset, in the order made")
    func insertions() throws {
        let bytes = Array(#"{"a":1,"b":2}"#.utf8)
        let edited = try bytes.withUnsafeBytes { raw -> [UInt8] in
            let scanner = JSONScanner(raw)
            let members = try scanner.topLevelMembers()
            var edits = JSONEdits()
            edits.removeMembers(of: members) { $0 == 0 }
            edits.insertFirstMember(Array(#""x":0"#.utf8), intoObjectAt: 0..<bytes.count, members: members)
            edits.insertFirstMember(Array(#""y":0"#.utf8), intoObjectAt: 0..<bytes.count, members: members)
            return edits.applied(to: bytes)
        }
        #expect(String(decoding: edited, as: UTF8.self) == #"{"x":0,"y":0,"b":2}"#)
        let empty = Array("{ }".utf8)
        var edits = JSONEdits()
        edits.insertFirstMember(Array(#""x":0"#.utf8), intoObjectAt: 0..<empty.count, members: [])
        #expect(String(decoding: edits.applied(to: empty), as: UTF8.self) == #"{"x":0 }"#)
    }

    @Test("the elements of an array, whatever they hold")
    func elements() throws {
        let json = #"{"v":[ 1, "a,b", {"c":[2,3]}, [] ,null]}"#
        let ranges = try withScanner(json) { scanner in
            let member = try #require(try scanner.topLevelMembers().first)
            return try scanner.elements(ofArrayAt: member.value)
        }
        let bytes = Array(json.utf8)
        #expect(ranges.map { String(decoding: bytes[$0], as: UTF8.self) } == ["1", #""a,b""#, #"{"c":[2,3]}"#, "[]", "null"])
        #expect(try withScanner(#"{"v":[]}"#) { try $0.elements(ofArrayAt: try $0.topLevelMembers()[0].value) }.isEmpty)
    }
}
