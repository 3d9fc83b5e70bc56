import Foundation
import Logging

/// Switchyard's log lines, one per event, on a `LogOutput` (standard output): as JSON
/// objects for log stores (`ts`, `level`, `msg`, `logger`, then the metadata as fields,
/// numbers as numbers), or as text for people at a terminal.
public struct SwitchyardLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text
        case json
    }

    public let label: String
    public let format: Format
    let output: LogOutput
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, format: Format, level: Logger.Level = .info, output: LogOutput = .standardOutput) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let own = event.metadata { fields.merge(own) { _, new in new } }
        if let error = event.error { fields["error"] = .string("\(error)") }
        let line = switch format {
        case .json: Self.json(level: event.level, message: event.message.description, label: label, fields: fields)
        case .text: Self.text(level: event.level, message: event.message.description, label: label, fields: fields)
        }
        output.write(line)
    }

    // MARK: JSON

    /// The fields every line begins with; metadata of the same name is written as `meta_<name>`.
    static let reserved: Set<String> = ["ts", "level", "msg", "logger"]

    static func json(level: Logger.Level, message: String, label: String, fields: Logger.Metadata, now: Date = Date()) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + message.utf8.count + fields.count * 32)
        out.append(contentsOf: #"{"ts":""#.utf8)
        appendTimestamp(now, to: &out)
        out.append(contentsOf: #"","level":""#.utf8)
        out.append(contentsOf: level.rawValue.utf8)
        out.append(contentsOf: #"","msg":"#.utf8)
        JSONString.append(message, to: &out)
        out.append(contentsOf: #","logger":"#.utf8)
        JSONString.append(label, to: &out)
        for key in fields.keys.sorted() {
            out.append(UInt8(ascii: ","))
            JSONString.append(reserved.contains(key) ? "meta_" + key : key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendJSON(fields[key]!, to: &out)
        }
        out.append(contentsOf: "}\n".utf8)
        return out
    }

    private static func appendJSON(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            JSONString.append(text, to: &out)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as Int: out.append(contentsOf: String(number).utf8)
            case let number as Int64: out.append(contentsOf: String(number).utf8)
            case let number as UInt64: out.append(contentsOf: String(number).utf8)
            case let number as Double where number.isFinite: out.append(contentsOf: String(number).utf8)
            case let flag as Bool: out.append(contentsOf: (flag ? "true" : "false").utf8)
            default: JSONString.append(convertible.description, to: &out)
            }
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendJSON(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            out.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONString.append(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendJSON(dictionary[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    // MARK: Text

    static func text(level: Logger.Level, message: String, label: String, fields: Logger.Metadata, now: Date = Date()) -> [UInt8] {
        var out: [UInt8] = []
        appendTimestamp(now, to: &out)
        out.append(contentsOf: " \(level.rawValue) \(label): \(message)".utf8)
        for key in fields.keys.sorted() {
            let value = "\(fields[key]!)"
            let plain = !value.isEmpty && !value.utf8.contains { $0 <= 0x20 || $0 == UInt8(ascii: "\"") || $0 == 0x7f }
            out.append(contentsOf: " \(key)=".utf8)
            if plain {
                out.append(contentsOf: value.utf8)
            } else {
                JSONString.append(value, to: &out)
            }
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    // MARK: Time

    /// `2026-12-03T06:50:00.123Z`.
    static func appendTimestamp(_ date: Date, to out: inout [UInt8]) {
        let total = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(total / 1000)
        let milliseconds = Int(total % 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var value = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                value %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        out.append(UInt8(ascii: "."))
        digits(milliseconds, 3)
        out.append(UInt8(ascii: "Z"))
    }
}

/// JSON string literals, escaped per RFC 8259 (control characters as `\u00XX`).
enum JSONString {
    static func append(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x0a: out.append(contentsOf: #"\n"#.utf8)
            case 0x0d: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20, 0x7f:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
