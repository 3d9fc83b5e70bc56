import Foundation
import NIOCore

/// One reply of the server: its code and text lines (several for `250-…` continuations).
struct SMTPReply: Sendable, Equatable {
    var code: Int
    var lines: [String]
}

/// Cuts the server's bytes into replies; bounded, so a hostile server cannot exhaust memory.
struct SMTPReplyParser {
    struct Malformed: Error { var reason: String }

    static let maximumLineLength = 4096
    static let maximumLines = 128

    private var buffer = ByteBuffer()
    private var pending: SMTPReply?

    /// Whether bytes are held that no complete reply has used yet.
    var hasUnreadBytes: Bool { buffer.readableBytes > 0 || pending != nil }

    mutating func append(_ bytes: ByteBuffer) {
        buffer.writeImmutableBuffer(bytes)
    }

    /// The next complete reply, or nil until more bytes arrive.
    mutating func nextReply() throws(Malformed) -> SMTPReply? {
        while let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            var line = buffer.readBytes(length: newline - buffer.readerIndex + 1)!.dropLast()
            buffer.discardReadBytes()
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            guard line.count <= Self.maximumLineLength else { throw Malformed(reason: "a reply line is too long") }
            let digits = line.prefix(3)
            guard digits.count == 3, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  line.count == 3 || line.dropFirst(3).first == UInt8(ascii: " ") || line.dropFirst(3).first == UInt8(ascii: "-"),
                  let code = Int(String(decoding: digits, as: UTF8.self)), (200...599).contains(code)
            else { throw Malformed(reason: "the server sent something that is not an SMTP reply") }
            let text = String(decoding: line.dropFirst(4), as: UTF8.self)
            var reply = pending ?? SMTPReply(code: code, lines: [])
            guard reply.code == code else { throw Malformed(reason: "a multi-line reply changed its code") }
            guard reply.lines.count < Self.maximumLines else { throw Malformed(reason: "a reply has too many lines") }
            reply.lines.append(text)
            if line.dropFirst(3).first == UInt8(ascii: "-") {
                pending = reply
            } else {
                pending = nil
                return reply
            }
        }
        guard buffer.readableBytes <= Self.maximumLineLength else { throw Malformed(reason: "a reply line is too long") }
        return nil
    }
}
