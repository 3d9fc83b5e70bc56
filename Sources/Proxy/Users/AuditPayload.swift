import Foundation

/// The request payload an audit entry keeps: the JSON body with the value of every field
/// that can hold a secret replaced, at any depth.
enum AuditPayload {
    /// Field names whose values are never kept (lower-cased): keys, passwords, tokens.
    static let secretFields: Set<String> = [
        "key", "secret", "password", "token", "api_key", "apikey", "authorization", "signing_secret", "new_password",
    ]
    static let redaction = "[redacted]"

    /// The body as compact JSON with secrets redacted; nil for an empty or non-JSON body
    /// (which a handler refuses anyway).
    static func redacted(_ body: Data) -> String? {
        guard !body.isEmpty,
              let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
        else { return nil }
        let clean = redact(object)
        guard let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys, .fragmentsAllowed]) else {
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A URL without what may carry a credential: its user and password, its query and
    /// its fragment (a webhook's `?token=`).
    static func redactedURL(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return redaction }
        if components.user != nil || components.password != nil {
            components.user = nil
            components.password = nil
        }
        if components.query != nil { components.query = "redacted" }
        if components.fragment != nil { components.fragment = "redacted" }
        return components.string ?? redaction
    }

    private static func redact(_ value: Any) -> Any {
        if let object = value as? [String: Any] {
            var clean: [String: Any] = [:]
            for (name, field) in object {
                let lower = name.lowercased()
                let secret = secretFields.contains(lower) || lower.hasSuffix("_secret") || lower.hasSuffix("_token")
                    || lower.hasSuffix("_password")
                if lower == "url", let text = field as? String {
                    clean[name] = redactedURL(text)
                    continue
                }
                clean[name] = secret && !(field is NSNull) ? redaction : redact(field)
            }
            return clean
        }
        if let array = value as? [Any] { return array.map(redact) }
        return value
    }
}
