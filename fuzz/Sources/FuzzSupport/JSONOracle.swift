import Foundation

/// Foundation's JSON parser, as a check on Switchyard's scanner and on what its
/// translators write that does not share their code.
public enum JSONOracle {
    /// The parsed value, or nil when Foundation rejects the text. Any top-level kind.
    public static func value(_ bytes: some Collection<UInt8>) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        value(bytes) != nil
    }

    /// The object, or nil when the text is no JSON object.
    public static func object(_ bytes: some Collection<UInt8>) -> [String: Any]? {
        value(bytes) as? [String: Any]
    }

    /// Whether Foundation's reading of `bytes` can be compared with the scanner's at all:
    /// Foundation guesses UTF-16 and UTF-32 from NUL bytes and skips a byte-order mark,
    /// where the scanner (like OpenAI) reads UTF-8 only.
    public static func readsAsUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.contains(0) { return false }
        if bytes.count >= 2, (bytes[0] == 0xFE && bytes[1] == 0xFF) || (bytes[0] == 0xFF && bytes[1] == 0xFE) { return false }
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { return false }
        return true
    }
}
