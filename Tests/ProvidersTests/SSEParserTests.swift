import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("SSEParser")
struct SSEParserTests {
    // MARK: Helpers

    /// Feeds `chunks` in order, then finishes.
    private func parse(_ chunks: [[UInt8]], finish: Bool = true) -> [SSEEvent] {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for chunk in chunks {
            var buffer = ByteBuffer()
            buffer.writeBytes(chunk)
            events += parser.feed(buffer)
        }
        if finish, let last = parser.finish() { events.append(last) }
        return events
    }

    private func parse(_ text: String, finish: Bool = true) -> [SSEEvent] {
        parse([Array(text.utf8)], finish: finish)
    }

    private func event(_ data: String, name: String? = nil) -> SSEEvent {
        SSEEvent(name: name, data: Array(data.utf8))
    }

    /// Checks that every way of cutting `bytes` in two, and cutting it byte by byte,
    /// yields `expected`.
    private func expectChunkingInvariant(
        _ bytes: [UInt8],
        _ expected: [SSEEvent],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(parse(bytes.map { [$0] }) == expected, "byte by byte", sourceLocation: sourceLocation)
        for split in 0...bytes.count {
            let events = parse([Array(bytes[..<split]), Array(bytes[split...])])
            #expect(events == expected, "split at \(split)", sourceLocation: sourceLocation)
            if events != expected { return }
        }
    }

    /// Events read independently of the parser from a fixture that uses LF line
    /// endings, one `data:` line per event and an optional `event:` line.
    private func referenceEvents(_ bytes: [UInt8]) -> [SSEEvent] {
        String(decoding: bytes, as: UTF8.self)
            .components(separatedBy: "\n\n")
            .compactMap { block -> SSEEvent? in
                var name: String?
                var data: String?
                for line in block.split(separator: "\n", omittingEmptySubsequences: true) {
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
                }
                return data.map { event($0, name: name) }
            }
    }

    private static let sseFixtures: [String] = {
        ((try? Fixtures.files(in: "openai/sse", withExtension: "sse")) ?? [])
            + ((try? Fixtures.files(in: "anthropic/sse", withExtension: "sse")) ?? [])
    }()

    // MARK: Framing

    private static let mixed = Array((
        "event: first\ndata: one\n\n"
            + ": a comment, then a ping\n: \n\n"
            + "data:{\"no\":\"space\"}\r\n\r\n"
            + "data: line 1\rdata: line 2\r\r"
            + "id: 7\nretry: 100\nunknown: x\ndata:  two spaces\n\n"
            + "data: caf\u{e9} \u{1F600} \u{4E2D}\r\n"
            + "data\n\n"
            + "event: last\r\ndata: [DONE]\r\n\r\n"
    ).utf8)

    private static let mixedEvents = [
        SSEEvent(name: "first", data: Array("one".utf8)),
        SSEEvent(data: Array("{\"no\":\"space\"}".utf8)),
        SSEEvent(data: Array("line 1\nline 2".utf8)),
        SSEEvent(data: Array(" two spaces".utf8)),
        SSEEvent(data: Array("caf\u{e9} \u{1F600} \u{4E2D}\n".utf8)),
        SSEEvent(name: "last", data: Array("[DONE]".utf8)),
    ]

    @Test("splits a stream of every kind of line into events")
    func mixedStream() {
        #expect(parse([Self.mixed]) == Self.mixedEvents)
        #expect(Self.mixedEvents.last?.isDone == true)
    }

    @Test("yields the same events wherever the chunks are cut")
    func everySplitPoint() {
        expectChunkingInvariant(Self.mixed, Self.mixedEvents)
    }

    @Test("LF, CRLF and CR line endings give the same events")
    func lineEndings() {
        let lf = "event: a\ndata: 1\ndata: 2\n\n: c\ndata: 3\n\n"
        let expected = [event("1\n2", name: "a"), event("3")]
        for ending in ["\n", "\r\n", "\r"] {
            let text = lf.replacingOccurrences(of: "\n", with: ending)
            #expect(parse(text) == expected, "ending \(Array(ending.utf8))")
            expectChunkingInvariant(Array(text.utf8), expected)
        }
    }

    @Test("a CR at the end of one chunk and the LF at the start of the next are one line end")
    func crlfAcrossChunks() {
        let chunks = [Array("data: a\r".utf8), Array("\ndata: b\r".utf8), [], Array("\n\r".utf8), Array("\n".utf8)]
        #expect(parse(chunks, finish: false) == [event("a\nb")])
        // Two CRs in a row are two line ends: the second is a blank line.
        #expect(parse([Array("data: a\r".utf8), Array("\rdata: b\n\n".utf8)], finish: false) == [event("a"), event("b")])
        // A CR followed by other text in the next chunk ends the line as well.
        #expect(parse([Array("data: a\r".utf8), Array("data: b\r\r".utf8)], finish: false) == [event("a\nb")])
    }

    @Test("a lone LF after a dispatched CR-terminated event is not a second blank line")
    func crThenLFAfterDispatch() {
        #expect(parse([Array("data: a\r\r".utf8), Array("\ndata: b\r\n\r\n".utf8)], finish: false) == [event("a"), event("b")])
    }

    @Test("ignores comments and lines of unknown fields")
    func comments() {
        #expect(parse(": hello\n:\n\n") == [])
        #expect(parse(": keep-alive\ndata: x\n: between\n\n") == [event("x")])
        #expect(parse("id: 1\nretry: 5\ndata: x\nfoo\n\n") == [event("x")])
    }

    @Test("joins multi-line data with LF and keeps a lone empty data line")
    func multiLineData() {
        #expect(parse("data: a\ndata:\ndata: c\n\n") == [event("a\n\nc")])
        #expect(parse("data:\n\n") == [event("")])
        #expect(parse("data\n\n") == [event("")])
    }

    @Test("drops exactly one space after the colon")
    func leadingSpace() {
        #expect(parse("data:x\n\n") == [event("x")])
        #expect(parse("data: x\n\n") == [event("x")])
        #expect(parse("data:  x \n\n") == [event(" x ")])
        #expect(parse("data:\tx\n\n") == [event("\tx")])
    }

    @Test("event names apply to one event only, even one without data")
    func eventNames() {
        #expect(parse("event: a\ndata: 1\n\ndata: 2\n\n") == [event("1", name: "a"), event("2")])
        #expect(parse("event: a\n\ndata: 2\n\n") == [event("2")])
        #expect(parse("event: a\nevent: b\ndata: 1\n\n") == [event("1", name: "b")])
        #expect(parse("event:\u{e9}v\u{e9}nement\ndata: 1\n\n") == [event("1", name: "\u{e9}v\u{e9}nement")])
    }

    @Test("a blank line without data dispatches nothing")
    func blankLines() {
        #expect(parse("\n\n\r\n\r\r").isEmpty)
        #expect(parse("\n\ndata: x\n\n\n\n") == [event("x")])
    }

    // MARK: The end of the stream

    @Test("finish() delivers an event whose blank line never came")
    func finishDelivers() {
        #expect(parse("data: last", finish: false) == [])
        #expect(parse("data: last") == [event("last")])
        #expect(parse("data: last\n") == [event("last")])
        #expect(parse("data: a\n\ndata: b\ndata: c") == [event("a"), event("b\nc")])
        #expect(parse("event: e\ndata: x\r") == [event("x", name: "e")])
    }

    @Test("finish() delivers nothing when there is nothing pending")
    func finishWithoutPending() {
        #expect(parse("") == [])
        #expect(parse("data: a\n\n") == [event("a")])
        #expect(parse(": comment") == [])
        #expect(parse("event: only-a-name\n") == [])
        var parser = SSEParser()
        _ = parser.feed(ByteBuffer(string: "data: x"))
        #expect(parser.finish() == event("x"))
        #expect(parser.finish() == nil)
    }

    // MARK: UTF-8

    @Test("text split in the middle of a UTF-8 sequence arrives whole")
    func utf8SplitMidCharacter() throws {
        let payload = "\u{e9}\u{1F600}\u{4E2D}\u{10FFFF}"
        let bytes = Array("event: \u{1F600}\ndata: \(payload)\n\n".utf8)
        let expected = [event(payload, name: "\u{1F600}")]
        expectChunkingInvariant(bytes, expected)
        let data = try #require(parse([bytes]).first?.data)
        #expect(String(validating: data, as: UTF8.self) == payload)
    }

    @Test(
        "a byte order mark at the start of the stream is ignored",
    )
    func byteOrderMark() {
        #expect(parse("\u{FEFF}data: first\n\ndata: second\n\n") == [event("first"), event("second")])
    }

    @Test("isDone recognises only [DONE]")
    func done() {
        #expect(event("[DONE]").isDone)
        #expect(!event("[DONE] ").isDone)
        #expect(!event("[done]").isDone)
        #expect(!event("{}").isDone)
    }

    // MARK: Recorded streams

    @Test("parses the recorded provider streams into their events", arguments: sseFixtures)
    func recordedStreams(path: String) throws {
        let bytes = try Fixtures.bytes(path)
        let whole = parse([bytes])
        #expect(!whole.isEmpty)
        #expect(whole == referenceEvents(bytes))
        if path.hasPrefix("openai/") {
            #expect(whole.last?.isDone == true)
            for event in whole.dropLast() {
                #expect(throws: Never.self) { try foundationJSON(event.data) }
            }
        } else {
            #expect(whole.allSatisfy { $0.name != nil })
        }
    }

    @Test("re-chunking the recorded streams at random boundaries changes nothing", arguments: sseFixtures)
    func recordedStreamsRechunked(path: String) throws {
        let bytes = try Fixtures.bytes(path)
        let whole = parse([bytes])
        for seed: UInt64 in 1...24 {
            let maximum = [1, 2, 3, 7, 16, 64, 512][Int(seed) % 7]
            #expect(parse(chunked(bytes, seed: seed, maximumChunk: maximum)) == whole, "seed \(seed)")
        }
    }

    @Test("the recorded streams read the same with CRLF and CR line endings", arguments: sseFixtures)
    func recordedStreamsOtherEndings(path: String) throws {
        let bytes = try Fixtures.bytes(path)
        let whole = parse([bytes])
        for ending in [[UInt8(0x0D), 0x0A], [0x0D]] {
            let converted = bytes.flatMap { $0 == 0x0A ? ending : [$0] }
            #expect(parse([converted]) == whole)
            #expect(parse(chunked(converted, seed: UInt64(ending.count), maximumChunk: 5)) == whole)
        }
    }
}
