import Foundation
import NIOCore

/// Maps Anthropic's errors, answered with an error status or sent mid-stream as
/// `event: error`, to the OpenAI error the tenant gets.
///
/// Only messages about the tenant's own request (`invalid_request_error`, a `not_found_error`
/// that is not about the model) are passed on. The rest are Switchyard's words: an
/// authentication message may quote part of the provider key, and rate-limit messages
/// name Switchyard's Anthropic organisation.
enum AnthropicError {
    /// Maps an error answer: its body's `error.type` when it has one, else its status.
    static func map(status: Int, body: ByteBuffer) -> OpenAIError {
        let detail = try? JSONDecoder().decode(AnthropicErrorBody.self, from: Data(body.readableBytesView)).error
        let type = detail?.type.flatMap { knownTypes.contains($0) ? $0 : nil } ?? type(forStatus: status)
        return map(type: type, message: detail?.message, status: status)
    }

    /// Maps the error of an `event: error` in a stream, whose HTTP status was 200.
    static func map(streamError detail: AnthropicErrorBody.Detail?) -> OpenAIError {
        let type = detail?.type.flatMap { knownTypes.contains($0) ? $0 : nil } ?? "api_error"
        return map(type: type, message: detail?.message, status: nil)
    }

    static let knownTypes: Set<String> = [
        "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error",
        "request_too_large", "rate_limit_error", "timeout_error", "api_error", "overloaded_error",
    ]

    /// The error type Anthropic documents for a status (errors.md), for bodies without one.
    static func type(forStatus status: Int) -> String {
        switch status {
        case 401: "authentication_error"
        case 402: "billing_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 408, 504: "timeout_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 529: "overloaded_error"
        case 400..<500: "invalid_request_error"
        default: "api_error"
        }
    }

    private static func map(type: String, message: String?, status: Int?) -> OpenAIError {
        switch type {
        case "invalid_request_error":
            let fallback = "The upstream provider rejected the request" + (status.map { " (status \($0))." } ?? ".")
            return .invalidRequest(message.flatMap { $0.isEmpty ? nil : $0 } ?? fallback)
        case "authentication_error":
            return UpstreamError.credentialsRejected(status: 401)
        case "permission_error":
            return UpstreamError.credentialsRejected(status: 403)
        case "billing_error":
            return OpenAIError(
                status: 502,
                message: "The upstream provider's account for this deployment cannot be billed.",
                type: "server_error",
                code: "upstream_billing_failed"
            )
        case "not_found_error":
            return notFound(message: message)
        case "request_too_large":
            return OpenAIError(
                status: 413,
                message: "The request is larger than the upstream provider accepts.",
                type: "invalid_request_error",
                code: "request_too_large"
            )
        case "rate_limit_error":
            return OpenAIError(
                status: 429,
                message: "The upstream provider is rate limiting this deployment; retry shortly.",
                type: "rate_limit_error",
                code: "rate_limit_exceeded"
            )
        case "timeout_error":
            return OpenAIError(status: 504, message: "The upstream provider timed out.", type: "server_error", code: "upstream_timeout")
        case "overloaded_error":
            return OpenAIError(status: 503, message: "The upstream provider is overloaded; retry shortly.", type: "server_error", code: "overloaded")
        default:
            let detail = status.map { " (status \($0))." } ?? "."
            return OpenAIError(status: 502, message: "The upstream provider failed" + detail, type: "server_error", code: "upstream_error")
        }
    }

    /// Anthropic answers an unknown model with `not_found_error` and a message such as
    /// `model: claude-x`; that one names the deployment's model, not the tenant's.
    private static func notFound(message: String?) -> OpenAIError {
        if let message, message.range(of: "model", options: .caseInsensitive) != nil {
            return OpenAIError(
                status: 404,
                message: "The upstream provider does not know the model this deployment names.",
                type: "invalid_request_error",
                param: "model",
                code: "model_not_found"
            )
        }
        return OpenAIError(
            status: 404,
            message: message.flatMap { $0.isEmpty ? nil : $0 } ?? "The upstream provider could not find the requested resource.",
            type: "invalid_request_error",
            code: "not_found"
        )
    }
}
