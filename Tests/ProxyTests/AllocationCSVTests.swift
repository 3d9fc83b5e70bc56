import Billing
import Foundation
import Testing

@testable import Proxy

/// RFC 4180 fields and exact seconds in the allocation report's CSV.
@Suite("Allocation CSV")
struct AllocationCSVTests {
    @Test("fields with a comma, quote, CR or LF are quoted, their quotes doubled; others are as they are")
    func quoting() {
        #expect(AllocationCSV.field("chat-small") == "chat-small")
        #expect(AllocationCSV.field("") == "")
        #expect(AllocationCSV.field("a,b") == "\"a,b\"")
        #expect(AllocationCSV.field(#"say "hi""#) == #""say ""hi""""#)
        #expect(AllocationCSV.field("two\nlines") == "\"two\nlines\"")
        #expect(AllocationCSV.field("cr\rhere") == "\"cr\rhere\"")
        // A quote with a combining mark is one Character, and still a quote to a reader.
        #expect(AllocationCSV.field("x\"\u{301}y").unicodeScalars.elementsEqual("\"x\"\"\u{301}y\"".unicodeScalars))
    }

    @Test("milliseconds print as exact seconds")
    func seconds() {
        #expect(AllocationCSV.seconds(milliseconds: 0) == "0.000")
        #expect(AllocationCSV.seconds(milliseconds: 12_345) == "12.345")
        #expect(AllocationCSV.seconds(milliseconds: 7) == "0.007")
        #expect(AllocationCSV.seconds(milliseconds: -1_500) == "-1.500")
        #expect(AllocationCSV.seconds(milliseconds: .max) == "9223372036854775.807")
    }

    @Test("the default window is the 30 days up to the start of the next hour")
    func defaultWindow() throws {
        let now = try Date("2026-11-23T10:17:05Z", strategy: .iso8601)
        let (from, to) = try AdminController.reportWindow([:], now: now)
        #expect(to == (try Date("2026-11-23T11:00:00Z", strategy: .iso8601)))
        #expect(from == (try Date("2026-10-24T11:00:00Z", strategy: .iso8601)))
        let (start, end) = try AdminController.reportWindow(["from": "2026-11-01"], now: now)
        #expect(start == (try Date("2026-11-01T00:00:00Z", strategy: .iso8601)) && end == to)
    }
}
