import Foundation
import Providers

/// The names people give tenants, tenant keys and provider keys: shown in tables, logs
/// and the portal, and used in paths (`/tenants/{name}/v1`). Control and format
/// characters (NUL truncates in SQLite, escapes rewrite terminals, bidi overrides
/// disguise text) and path separators are refused; the name is kept in NFC.
enum DisplayName {
    static let longest = 200

    /// The trimmed, normalised name, or a 400 naming `field`.
    /// - Parameter allowEmpty: Whether an empty name (after trimming) is accepted, for
    ///   names that have a default.
    static func validated(_ raw: String, field: String, allowEmpty: Bool = false) throws(OpenAIError) -> String {
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines).precomposedStringWithCanonicalMapping
        let problem: String?
        if name.isEmpty {
            problem = allowEmpty ? nil : "must not be empty"
        } else if name.count > longest || name.utf8.count > 4 * longest {
            problem = "must be at most \(longest) characters"
        } else if let scalar = name.unicodeScalars.first(where: isRefused) {
            problem = scalar == "/" || scalar == "\\"
                ? "must not contain '/' or '\\'"
                : "must not contain control or invisible formatting characters (found U+\(String(scalar.value, radix: 16, uppercase: true).leftPadded(to: 4)))"
        } else {
            problem = nil
        }
        if let problem {
            throw OpenAIError.invalidRequest("'\(field)' \(problem).", param: field)
        }
        return name
    }

    private static func isRefused(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "/" || scalar == "\\" { return true }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .unassigned, .surrogate: return true
        default: return false
        }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
