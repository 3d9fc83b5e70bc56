import Foundation
import Testing

@testable import Billing

/// The cursor of an allocation report's pages: opaque, checked, and ordered as SQLite orders text.
@Suite("Allocation cursor")
struct AllocationCursorTests {
    @Test("a cursor round-trips through its base64url text, which needs no escaping in a URL")
    func roundTrip() throws {
        let cursor = AllocationCursor(kind: .group, values: ["ten_a", #"chat "odd", v2/+?"#, "USD"])
        let text = cursor.encoded
        #expect(text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        let decoded = try AllocationCursor(decoding: text, dimensions: 2, allowsIdle: false)
        #expect(decoded.kind == .group && decoded.values == cursor.values)
        let idle = AllocationCursor(kind: .idle, values: ["gpu", "USD"])
        #expect(try AllocationCursor(decoding: idle.encoded, dimensions: 5, allowsIdle: true).values == ["gpu", "USD"])
    }

    @Test("what a report did not give is refused")
    func refused() {
        let idle = AllocationCursor(kind: .idle, values: ["gpu", "USD"]).encoded
        for (text, dimensions, allowsIdle) in [
            ("", 0, false), ("%%%", 0, false), ("e30", 0, false), (idle, 1, false),
            (AllocationCursor(kind: .group, values: ["a", "USD"]).encoded, 2, false),
            (AllocationCursor(kind: .total, values: ["USD"]).encoded, 0, false),
        ] as [(String, Int, Bool)] {
            #expect(throws: ReportError.self) { try AllocationCursor(decoding: text, dimensions: dimensions, allowsIdle: allowsIdle) }
        }
    }

    @Test("groups before idle rows, values by their bytes, not by Unicode equivalence")
    func order() {
        func group(_ values: String...) -> AllocationCursor { AllocationCursor(kind: .group, values: values) }
        #expect(group("a", "USD") < group("b", "EUR"))
        #expect(group("a", "EUR") < group("a", "USD"))
        #expect(group("chat large") < group("chat-large"))
        #expect(group("zzz") < AllocationCursor(kind: .idle, values: ["a", "USD"]))
        // "é" precomposed (C3 A9) and decomposed (65 CC 81) are equal Strings, but SQLite sorts their bytes.
        let composed = group("caf\u{E9}")
        let decomposed = group("cafe\u{301}")
        #expect(decomposed < composed && !(composed < decomposed) && composed != decomposed)
    }
}
