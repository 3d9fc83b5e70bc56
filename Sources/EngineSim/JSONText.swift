/// JSON text for the simulator's hot path, where benchmarks push tens of thousands of
/// requests a second and a Codable encoder per token would dominate the profile.
enum JSONText {
    /// Returns `value` as a JSON string literal, quoted and escaped.
    /// - Parameter value: Any string, including user-supplied model names.
    static func quoted(_ value: String) -> String {
        // Most strings (model names, vocabulary words) need no escaping at all.
        if !value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return "\"" + value + "\""
        }
        var escaped = "\""
        escaped.reserveCapacity(value.utf8.count + 16)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                escaped.unicodeScalars.append(scalar)
            }
        }
        escaped += "\""
        return escaped
    }

    /// Returns `value` as a JSON string literal, or `null`.
    static func quotedOrNull(_ value: String?) -> String {
        value.map(quoted) ?? "null"
    }
}
