import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Providers

/// Stamps every response with `x-request-id` and turns every error into an
/// OpenAI-shaped JSON response with the right status. Nothing a client sends yields a 500.
public struct OpenAIErrorMiddleware: RouterMiddleware {
    public typealias Context = SwitchyardRequestContext

    let metrics: ProxyMetrics

    public init(metrics: ProxyMetrics) {
        self.metrics = metrics
    }

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Mapped apart, synchronously: this frame is kept by every open connection.
            response = Self.response(for: error, request: request, context: context)
        }
        response.headers[.requestID] = context.requestID
        metrics.response(status: response.status.code)
        return response
    }

    /// The OpenAI-shaped answer for an error a route threw.
    @inline(never)
    static func response(for error: any Error, request: Request, context: Context) -> Response {
        switch error {
        case let error as OpenAIError:
            return error.response()
        case let error as any HTTPResponseError:
            return translate(error, request: request).response()
        case let error as HTTPParserError:
            // Normally answered by ClientConnectionHandler before it gets here.
            return (ClientConnectionHandler.rejection(for: error) ?? OpenAIError.malformedRequest).response()
        case is CancellationError where context.connection?.hasLeft == true:
            // Nobody reads this answer; the status is what the metrics and logs record.
            return OpenAIError.clientClosedRequest.response()
        default:
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return OpenAIError(
                status: 500,
                message: "The server had an error while processing your request (request id \(context.requestID)).",
                type: "server_error"
            ).response()
        }
    }

    /// OpenAI's answer for a URL it does not serve.
    static func unknownURL(method: String, path: some StringProtocol) -> OpenAIError {
        OpenAIError(status: 404, message: "Invalid URL (\(method) \(path))", type: "invalid_request_error", code: "unknown_url")
    }

    private static let knownMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options, .trace]

    /// Hummingbird's own errors (no route, body too large, ...) in OpenAI's shape.
    static func translate(_ error: any HTTPResponseError, request: Request) -> OpenAIError {
        switch error.status {
        case .notFound where !knownMethods.contains(request.method):
            // RFC 9110 §9.1: a method the server does not recognise is a 501.
            return OpenAIError(
                status: 501,
                message: "Method \(request.method.rawValue) is not supported.",
                type: "invalid_request_error",
                code: "method_not_implemented"
            )
        case .notFound:
            return unknownURL(method: request.method.rawValue, path: request.uri.path)
        case .contentTooLarge:
            return OpenAIError(status: 413, message: "The request body is too large.", type: "invalid_request_error", code: "request_too_large")
        case .methodNotAllowed:
            return OpenAIError(
                status: 405,
                message: "Method \(request.method.rawValue) is not allowed for \(request.uri.path).",
                type: "invalid_request_error",
                code: "method_not_allowed"
            )
        default:
            let status = error.status.code
            return OpenAIError(
                status: status,
                message: error.status.reasonPhrase,
                type: status >= 500 ? "server_error" : "invalid_request_error"
            )
        }
    }
}
