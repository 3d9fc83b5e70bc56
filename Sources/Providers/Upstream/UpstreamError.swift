import NIOCore

/// Turns an upstream's error response into the OpenAI error the client gets.
public enum UpstreamError {
    /// Whether another key or deployment may succeed: timeouts, rate limits, overload
    /// and server errors; never a request the upstream found wrong.
    public static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 429 || status == 529 || (500...599).contains(status)
    }

    /// Maps an error status and body. An OpenAI-shaped body keeps its message, type and
    /// code; anything else becomes a generic error that names the status, never echoing
    /// an upstream body that might carry a provider's internals.
    public static func map(status: Int, body: ByteBuffer) -> OpenAIError {
        if let parsed = parseOpenAIShape(body, status: status) { return parsed }
        switch status {
        case 401, 403:
            return credentialsRejected(status: status)
        case 404:
            return OpenAIError(status: 502, message: "The upstream answered 404 Not Found.", type: "server_error", code: "upstream_error")
        case 429:
            return OpenAIError(status: 429, message: "The upstream is rate limited; retry shortly.", type: "rate_limit_error", code: "rate_limit_exceeded")
        case 400..<500:
            return OpenAIError(status: status, message: "The upstream rejected the request (status \(status)).", type: "invalid_request_error")
        default:
            return OpenAIError(status: 502, message: "The upstream failed (status \(status)).", type: "server_error", code: "upstream_error")
        }
    }

    /// The upstream refused Switchyard's provider key (401) or its permissions (403). The
    /// client gets the same status, so SDKs raise their authentication or permission
    /// error, but in Switchyard's words: an upstream's message may quote part of the key.
    public static func credentialsRejected(status: Int) -> OpenAIError {
        status == 403
            ? OpenAIError(
                status: 403,
                message: "The upstream provider refused Switchyard's credentials for this model (permission denied). An operator must check the provider key.",
                type: "permission_error",
                code: "upstream_auth_failed"
            )
            : OpenAIError(
                status: 401,
                message: "The upstream provider rejected Switchyard's credentials for this model. An operator must check the provider key.",
                type: "authentication_error",
                code: "upstream_auth_failed"
            )
    }

    private static func parseOpenAIShape(_ body: ByteBuffer, status upstreamStatus: Int) -> OpenAIError? {
        // The client gets an error status even when the upstream sent an error body with
        // another (a 3xx, a 1xx, past 599): that one is the upstream's failure.
        let status = (400...599).contains(upstreamStatus) ? upstreamStatus : 502
        return body.withUnsafeReadableBytes { raw -> OpenAIError? in
            let scanner = JSONScanner(raw)
            guard let members = try? scanner.topLevelMembers() else { return nil }
            for member in members where scanner.key(member, equals: "error") {
                guard scanner.kind(at: member.value.lowerBound) == .object,
                      let fields = try? scanner.members(ofObjectAt: member.value)
                else { return nil }
                var error = OpenAIError(status: status, message: "", type: status >= 500 ? "server_error" : "invalid_request_error")
                for field in fields {
                    if scanner.key(field, equals: "message") {
                        error.message = scanner.string(at: field.value) ?? ""
                    } else if scanner.key(field, equals: "type") {
                        error.type = scanner.string(at: field.value) ?? error.type
                    } else if scanner.key(field, equals: "param") {
                        error.param = scanner.string(at: field.value)
                    } else if scanner.key(field, equals: "code") {
                        error.code = scanner.string(at: field.value)
                            ?? scanner.integer(at: field.value).map(String.init)
                    }
                }
                // An upstream's 401 is about Switchyard's provider key, not the tenant's key,
                // and its message may echo part of that key: say so in our own words.
                if status == 401 || status == 403 {
                    error = credentialsRejected(status: status)
                }
                return error
            }
            return nil
        }
    }
}
