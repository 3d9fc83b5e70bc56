import Foundation
import Logging
import Testing

@testable import Proxy

@Suite("Log lines")
struct LogHandlerTests {
    @Test func jsonLinesParseWithNumbersAsNumbersAndEveryCharacterEscaped() throws {
        let line = SwitchyardLogHandler.json(
            level: .info, message: "a \"quoted\"\nline\u{1}", label: "switchyard",
            fields: [
                "status": .stringConvertible(200), "ratio": .stringConvertible(0.5), "flag": .stringConvertible(true),
                "name": .string("ünïcode \\ path"), "msg": .string("clash"), "list": .array([.string("a"), .stringConvertible(2)]),
                "id": .stringConvertible(UUID(uuidString: "00000000-0000-0000-0000-000000000001")!),
            ],
            now: Date(timeIntervalSince1970: 1_796_277_600.123)
        )
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(!line.dropLast().contains(UInt8(ascii: "\n")), "one line per event")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        #expect(object["ts"] as? String == "2026-12-03T06:00:00.123Z")
        #expect(object["level"] as? String == "info")
        #expect(object["msg"] as? String == "a \"quoted\"\nline\u{1}")
        #expect(object["logger"] as? String == "switchyard")
        #expect(object["status"] as? Int == 200)
        #expect(object["ratio"] as? Double == 0.5)
        #expect(object["flag"] as? Bool == true)
        #expect(object["name"] as? String == "ünïcode \\ path")
        #expect(object["meta_msg"] as? String == "clash", "metadata never overwrites the line's own fields")
        #expect((object["list"] as? [Any])?.count == 2)
        #expect(object["id"] as? String == "00000000-0000-0000-0000-000000000001")
    }

    @Test func textLinesQuoteValuesWithSpaces() {
        let line = String(decoding: SwitchyardLogHandler.text(
            level: .warning, message: "slow", label: "switchyard",
            fields: ["plain": .string("x1"), "spaced": .string("a b")], now: Date(timeIntervalSince1970: 0)
        ), as: UTF8.self)
        #expect(line == "1970-01-01T00:00:00.000Z warning switchyard: slow plain=x1 spaced=\"a b\"\n")
    }

    @Test func theOutputWritesEveryLineInOrderAndDropsPastItsLimit() throws {
        var pipe: [Int32] = [0, 0]
        #expect(Foundation.pipe(&pipe) == 0)
        defer { close(pipe[0]) }
        let output = LogOutput(descriptor: pipe[1], limit: 1 << 20)
        for index in 0..<1000 { output.write(Array("line \(index)\n".utf8)) }
        output.flush()
        close(pipe[1])
        var read: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = Foundation.read(pipe[0], &chunk, chunk.count)
            if count <= 0 { break }
            read += chunk[0..<count]
        }
        let lines = String(decoding: read, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 1000)
        #expect(lines.first == "line 0" && lines.last == "line 999")
    }
}
