import Foundation
import NIOCore

/// One plain-text mail to one recipient.
public struct MailMessage: Sendable {
    public var to: String
    public var subject: String
    public var textBody: String

    public init(to: String, subject: String, textBody: String) {
        self.to = to
        self.subject = subject
        self.textBody = textBody
    }

    /// The DATA payload: headers, body with CRLF line ends and dot-stuffing, and the
    /// final `.` line.
    ///
    /// The body goes as 7bit when it is short-lined printable ASCII, else quoted-printable,
    /// so it survives servers without 8BITMIME.
    func rendered(from: String, date: Date) throws(SMTPError) -> ByteBuffer {
        let to = try SMTPConfiguration.checkedAddress(to, field: "to")
        guard !subject.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) else {
            throw SMTPError(step: .message, kind: .unsafeField("subject"))
        }
        let lines = Self.lines(of: textBody)
        let plain = lines.allSatisfy { $0.count <= 998 && $0.allSatisfy { (0x20...0x7E).contains($0) || $0 == 0x09 } }
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"

        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"

        var buffer = ByteBuffer()
        for header in [
            "From: \(from)", "To: \(to)", "Subject: \(Self.encodedHeaderValue(subject))",
            "Date: \(formatter.string(from: date))", "Message-ID: <\(UUID().uuidString.lowercased())@\(domain)>",
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: \(plain ? "7bit" : "quoted-printable")", "",
        ] {
            buffer.writeString(header + "\r\n")
        }
        for line in plain ? lines : lines.flatMap(Self.quotedPrintable) {
            // RFC 5321 4.5.2: a leading dot is doubled so no body line ends the DATA.
            if line.first == UInt8(ascii: ".") { buffer.writeString(".") }
            buffer.writeBytes(line)
            buffer.writeString("\r\n")
        }
        buffer.writeString(".\r\n")
        return buffer
    }

    /// The body's lines as UTF-8, whichever of CRLF, LF or CR ends them.
    static func lines(of text: String) -> [ArraySlice<UInt8>] {
        let bytes = Array(text.utf8)
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x0D || bytes[index] == 0x0A {
                lines.append(bytes[start..<index])
                if bytes[index] == 0x0D, index + 1 < bytes.count, bytes[index + 1] == 0x0A { index += 1 }
                start = index + 1
            }
            index += 1
        }
        if start < bytes.count || lines.isEmpty { lines.append(bytes[start...]) }
        return lines
    }

    /// A header value as is when ASCII, else RFC 2047 encoded-words folded onto lines.
    static func encodedHeaderValue(_ value: String) -> String {
        guard !value.unicodeScalars.allSatisfy(\.isASCII) || value.utf8.count > 900 else { return value }
        // 39 bytes make 52 base64 characters, 64 with `=?UTF-8?B?` and `?=`: a word fits a
        // 78-character line after a header name such as `Subject: `.
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in value.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > 39 {
                words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=") }
        return words.joined(separator: "\r\n ")
    }

    /// One line in RFC 2045 quoted-printable: at most 76 characters, soft-broken by `=`.
    static func quotedPrintable(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        let hex = Array("0123456789ABCDEF".utf8)
        var lines: [ArraySlice<UInt8>] = []
        var current: ArraySlice<UInt8> = []
        for (offset, byte) in line.enumerated() {
            let isLast = offset == line.count - 1
            let literal = (0x21...0x7E).contains(byte) && byte != UInt8(ascii: "=") || (byte == 0x20 || byte == 0x09) && !isLast
            let token = literal ? [byte] : [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            if current.count + token.count > 75 {
                current.append(UInt8(ascii: "="))
                lines.append(current)
                current = []
            }
            current += token
        }
        lines.append(current)
        return lines
    }
}
