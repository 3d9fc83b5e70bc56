import NIOCore

/// One server-sent event.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, when given.
    public var name: String?
    /// The `data:` lines joined by `\n`.
    public var data: [UInt8]

    public init(name: String? = nil, data: [UInt8]) {
        self.name = name
        self.data = data
    }

    public var isDone: Bool {
        data.count == 6 && data.elementsEqual("[DONE]".utf8)
    }
}

/// Splits a byte stream into server-sent events, whatever the chunk boundaries: mid-line,
/// mid-UTF-8 sequence, between the CR and LF of a CRLF. Follows the WHATWG framing rules:
/// LF, CR or CRLF end a line; a blank line ends an event; lines starting with `:` are
/// comments; `data:` lines accumulate; one space after the colon is dropped.
///
/// Lines that are no SSE field at all are kept apart (up to `strayLimit` bytes): some
/// upstreams end a failed stream with a bare JSON error object instead of an event, and
/// that must not pass for a stream that ended well.
public struct SSEParser: Sendable {
    /// The most bytes of stray lines kept; an error object is far smaller.
    public static let strayLimit = 64 * 1024

    private var line: [UInt8] = []
    /// Lines that were no SSE field (no `data`, `event`, `id` or `retry`), each followed
    /// by a line feed, up to `strayLimit` bytes.
    public private(set) var stray: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var skipLeadingLineFeed = false
    /// Bytes of a leading byte-order mark seen so far; -1 once past the stream's start.
    private var byteOrderMarkProgress = 0

    public init() {}

    /// Feeds the next chunk of bytes; returns the events it completed, in order.
    public mutating func feed(_ buffer: ByteBuffer) -> [SSEEvent] {
        var events: [SSEEvent] = []
        buffer.withUnsafeReadableBytes { raw in
            var start = skipByteOrderMark(raw)
            var index = start
            while index < raw.count {
                let byte = raw[index]
                if byte == 0x0A || byte == 0x0D {
                    if byte == 0x0A, skipLeadingLineFeed, index == start, line.isEmpty {
                        skipLeadingLineFeed = false
                        index += 1
                        start = index
                        continue
                    }
                    line.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[start..<index]))
                    if let event = endLine() { events.append(event) }
                    skipLeadingLineFeed = byte == 0x0D
                    index += 1
                    if skipLeadingLineFeed, index < raw.count, raw[index] == 0x0A {
                        skipLeadingLineFeed = false
                        index += 1
                    }
                    start = index
                } else {
                    skipLeadingLineFeed = false
                    index += 1
                }
            }
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[start..<raw.count]))
        }
        return events
    }

    /// A stream may begin with a UTF-8 byte-order mark, which is not part of the first
    /// line; returns how many bytes of `raw` belong to it (it may span chunks).
    private mutating func skipByteOrderMark(_ raw: UnsafeRawBufferPointer) -> Int {
        let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
        var index = 0
        while byteOrderMarkProgress >= 0, byteOrderMarkProgress < 3, index < raw.count {
            guard raw[index] == mark[byteOrderMarkProgress] else {
                // Not a mark after all: what matched so far was text.
                line.append(contentsOf: mark[0..<byteOrderMarkProgress])
                byteOrderMarkProgress = -1
                return index
            }
            byteOrderMarkProgress += 1
            index += 1
        }
        if byteOrderMarkProgress == 3 { byteOrderMarkProgress = -1 }
        return index
    }

    /// Ends the stream: an event whose blank line never came is still delivered, as the
    /// last event of a stream without a trailing newline should be.
    public mutating func finish() -> SSEEvent? {
        var event: SSEEvent?
        if !line.isEmpty { event = endLine() }
        if event == nil { event = dispatch() }
        return event
    }

    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        var valueStart = Swift.min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let field = line[0..<colon]
        if field.elementsEqual("data".utf8) {
            if hasData { data.append(0x0A) }
            data.append(contentsOf: line[valueStart...])
            hasData = true
        } else if field.elementsEqual("event".utf8) {
            eventName = String(decoding: line[valueStart...], as: UTF8.self)
        } else if !field.elementsEqual("id".utf8), !field.elementsEqual("retry".utf8),
                  stray.count + line.count < Self.strayLimit {
            stray.append(contentsOf: line)
            stray.append(0x0A)
        }
        return nil
    }

    /// The JSON error object the stray lines make up, when they do: `{"error":{…}}` or
    /// Google's one-element array of it, from the first `{` or `[` of the stray lines;
    /// text after it (a proxy's own words) does not hide it. Nil when there is none.
    public var strayError: ByteBuffer? {
        var from = stray.startIndex
        while let start = stray[from...].firstIndex(where: { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: "[") }) {
            if let error = Self.errorValue(in: Array(stray[start...])) { return ByteBuffer(bytes: error) }
            from = start + 1
        }
        return nil
    }

    /// The first JSON value of `bytes` when it is an error object (an `error` member that
    /// is an object), or an array whose first element is one.
    private static func errorValue(in bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBytes { raw -> [UInt8]? in
            let scanner = JSONScanner(raw)
            guard let end = try? scanner.scanValue(from: 0, depth: 0) else { return nil }
            var object = 0..<end
            if scanner.kind(at: 0) == .array {
                guard let first = (try? scanner.elements(ofArrayAt: 0..<end))?.first else { return nil }
                object = first
            }
            guard scanner.kind(at: object.lowerBound) == .object,
                  let members = try? scanner.members(ofObjectAt: object),
                  members.contains(where: { scanner.key($0, equals: "error") && scanner.kind(at: $0.value.lowerBound) == .object })
            else { return nil }
            return Array(raw[0..<end])
        }
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            eventName = nil
        }
        guard hasData else { return nil }
        return SSEEvent(name: eventName, data: data)
    }
}
