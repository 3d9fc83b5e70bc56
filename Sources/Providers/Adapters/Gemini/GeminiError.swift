import Foundation
import NIOCore

/// Google's error object (`google.rpc.Status` in REST JSON): `{"error":{"code","message",
/// "status","details"}}`, sometimes wrapped in a one-element array; also sent as a stream
/// event when a stream fails mid-way.
struct GeminiError: Decodable, Sendable, Equatable {
    /// One `details[]` entry; only the fields Switchyard reads.
    struct Detail: Decodable, Sendable, Equatable {
        var type: String?
        /// `google.rpc.ErrorInfo.reason`, e.g. `API_KEY_INVALID`.
        var reason: String?
        /// `google.rpc.RetryInfo.retryDelay`, a proto Duration like `34.4s`.
        var retryDelay: String?

        enum CodingKeys: String, CodingKey {
            case type = "@type"
            case reason, retryDelay
        }
    }

    /// The HTTP status Google would answer with.
    var code: Int?
    var message: String?
    /// The canonical code name, e.g. `RESOURCE_EXHAUSTED`.
    var status: String?
    var details: [Detail]?

    private struct Envelope: Decodable {
        var error: GeminiError
    }

    /// Reads an error body; nil when it is not Google's shape.
    static func decode(_ body: ByteBuffer) -> GeminiError? {
        let data = Data(body.readableBytesView)
        let decoder = JSONDecoder()
        if let envelope = try? decoder.decode(Envelope.self, from: data) { return envelope.error }
        return try? decoder.decode([Envelope].self, from: data).first?.error
    }

    /// How long Google asks callers to wait (`RetryInfo`), when it says.
    var retryDelay: Duration? {
        details?.lazy.compactMap { detail in
            detail.type?.hasSuffix("google.rpc.RetryInfo") == true ? detail.retryDelay.flatMap(RateLimitSignals.parseDuration) : nil
        }.first
    }

    /// Whether an `INVALID_ARGUMENT` is about Switchyard's provider key rather than the
    /// request (Google answers a bad key with 400). Its text is then never shown: Google's
    /// details may quote the key.
    var isAboutProviderKey: Bool {
        if details?.contains(where: { $0.reason?.hasPrefix("API_KEY") == true }) == true { return true }
        return message?.range(of: "api key", options: .caseInsensitive) != nil
    }
}

// MARK: - In OpenAI's terms

extension GeminiError {
    /// The error the client gets.
    ///
    /// - Parameter httpStatus: the upstream's status, used when the body names no code.
    func openAIError(httpStatus: Int) -> OpenAIError {
        let name = status ?? Self.statusName(http: code ?? httpStatus)
        switch name {
        case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED":
            if isAboutProviderKey { return UpstreamError.credentialsRejected(status: 401) }
            return OpenAIError(status: 400, message: upstreamMessage, type: "invalid_request_error")
        case "UNAUTHENTICATED":
            return UpstreamError.credentialsRejected(status: 401)
        case "PERMISSION_DENIED":
            return UpstreamError.credentialsRejected(status: 403)
        case "NOT_FOUND":
            let aboutModel = upstreamMessage.contains("models/") || upstreamMessage.localizedCaseInsensitiveContains("model")
            return OpenAIError(
                status: 404,
                message: upstreamMessage,
                type: "invalid_request_error",
                param: aboutModel ? "model" : nil,
                code: aboutModel ? "model_not_found" : nil
            )
        case "RESOURCE_EXHAUSTED":
            // Google's quota messages name the Google Cloud project behind the key.
            return OpenAIError(
                status: 429, message: "The upstream provider is rate limited; retry shortly.",
                type: "rate_limit_error", code: "rate_limit_exceeded"
            )
        case "DEADLINE_EXCEEDED":
            return OpenAIError(status: 504, message: "The upstream provider timed out.", type: "server_error", code: "upstream_timeout")
        case "UNAVAILABLE":
            return .upstreamUnavailable("The upstream provider is unavailable; retry shortly.")
        case "CANCELLED":
            // Sent in place of the rest of a stream: the answer so far is incomplete.
            return OpenAIError(
                status: 502, message: "The upstream provider cancelled the answer before it was complete.",
                type: "server_error", code: "upstream_cancelled"
            )
        default:
            return .upstreamFailed("The upstream provider failed (\(name)).")
        }
    }

    private var upstreamMessage: String {
        message.flatMap { $0.isEmpty ? nil : $0 } ?? "The upstream provider rejected the request (\(status ?? "status \(code ?? 0)"))."
    }

    /// The canonical code Google pairs with an HTTP status (google.rpc.Code).
    static func statusName(http status: Int) -> String {
        switch status {
        case 400: "INVALID_ARGUMENT"
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 408: "DEADLINE_EXCEEDED"
        case 409: "ABORTED"
        case 429: "RESOURCE_EXHAUSTED"
        case 501: "UNIMPLEMENTED"
        case 503: "UNAVAILABLE"
        case 504: "DEADLINE_EXCEEDED"
        default: status < 500 ? "FAILED_PRECONDITION" : "INTERNAL"
        }
    }
}
