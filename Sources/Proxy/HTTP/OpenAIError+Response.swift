import HTTPTypes
import Hummingbird
import NIOCore
import Providers

extension OpenAIError {
    /// The error as a JSON response.
    public func response() -> Response {
        PlainResponse(self).response
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("x-request-id")!
    static let retryAfter = HTTPField.Name("retry-after")!
    /// Milliseconds an answered request waited for an engine slot.
    static let queueMilliseconds = HTTPField.Name("x-switchyard-queue-ms")!
    /// When a request refused for capacity would have started, in milliseconds.
    static let predictedStartMilliseconds = HTTPField.Name("x-switchyard-predicted-start-ms")!
    /// When the spent budget or quota that refused a request resets (RFC 3339).
    static let budgetReset = HTTPField.Name("x-switchyard-budget-reset")!
    /// Set on answers admitted at the throttled rate of a spent budget or quota.
    static let throttled = HTTPField.Name("x-switchyard-throttled")!
}

extension OpenAIError {
    /// What a request the client abandoned is recorded as (nginx's 499); never sent.
    static let clientClosedRequest = OpenAIError(
        status: 499,
        message: "The client closed the connection before the answer was ready.",
        type: "client_closed_request"
    )

    /// A request that is not valid HTTP/1.1.
    static let malformedRequest = OpenAIError(
        status: 400,
        message: "The request could not be read: it is not valid HTTP/1.1.",
        type: "invalid_request_error",
        code: "malformed_request"
    )
}
