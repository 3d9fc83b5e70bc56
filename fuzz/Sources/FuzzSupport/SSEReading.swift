import Providers

/// A second reading of server-sent events, written apart from `SSEParser` and over the
/// whole stream at once, to check the parser against.
public enum ReferenceSSE {
    /// The events of a whole stream, by the rules `SSEParser` documents: an optional
    /// UTF-8 byte-order mark; LF, CR or CRLF end a line; a blank line ends an event; `:`
    /// starts a comment; `data:` lines join with LF; one space after the colon is dropped;
    /// an event still open at the end of the stream is delivered.
    public static func events(_ bytes: UnsafeRawBufferPointer) -> [SSEEvent] {
        var start = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        var reader = Reader()
        var lineStart = start
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == 0x0A || byte == 0x0D else {
                index += 1
                continue
            }
            reader.line(Array(bytes[lineStart..<index]))
            if byte == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1 }
            index += 1
            lineStart = index
        }
        let last = Array(bytes[lineStart..<bytes.count])
        if !last.isEmpty { reader.line(last) }
        reader.line([])
        return reader.events
    }

    private struct Reader {
        var events: [SSEEvent] = []
        var data: [UInt8]?
        var name: String?

        mutating func line(_ line: [UInt8]) {
            if line.isEmpty {
                if let data { events.append(SSEEvent(name: name, data: data)) }
                data = nil
                name = nil
                return
            }
            if line[0] == UInt8(ascii: ":") { return }
            let colon = line.firstIndex(of: UInt8(ascii: ":"))
            let field = line[..<(colon ?? line.count)]
            var value = colon.map { line[($0 + 1)...] } ?? []
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
            if field.elementsEqual("data".utf8) {
                data = data.map { $0 + [0x0A] + value } ?? Array(value)
            } else if field.elementsEqual("event".utf8) {
                name = String(decoding: value, as: UTF8.self)
            }
        }
    }
}

/// Reads what a translator sends the client, which must be stricter than SSE in general:
/// LF line ends only (no CR anywhere), each event an optional `event: ` line, then one
/// or more `data: ` lines, then a blank line; nothing else, and nothing after the last
/// event. Traps on anything else.
public enum StrictSSE {
    public static func events(_ output: [UInt8]) -> [SSEEvent] {
        invariant(!output.contains(0x0D), "a CR in the output: \(describe(output))")
        var events: [SSEEvent] = []
        var name: String?
        var data: [UInt8]?
        var lineStart = 0
        for index in output.indices where output[index] == 0x0A {
            let line = output[lineStart..<index]
            lineStart = index + 1
            if line.isEmpty {
                invariant(data != nil, "an event without data at byte \(index): \(describe(output))")
                events.append(SSEEvent(name: name, data: data ?? []))
                name = nil
                data = nil
            } else if line.starts(with: eventPrefix) {
                invariant(name == nil && data == nil, "an `event:` line inside an event at byte \(index): \(describe(output))")
                name = String(decoding: line.dropFirst(eventPrefix.count), as: UTF8.self)
            } else if line.starts(with: dataPrefix) {
                let value = line.dropFirst(dataPrefix.count)
                data = data.map { $0 + [0x0A] + value } ?? Array(value)
            } else {
                invariant(false, "a line that is neither `data: ` nor `event: ` at byte \(index): \(describe(output))")
            }
        }
        invariant(lineStart == output.count && data == nil && name == nil, "the output ends inside an event: \(describe(output))")
        return events
    }

    private static let eventPrefix = Array("event: ".utf8)
    private static let dataPrefix = Array("data: ".utf8)
}
