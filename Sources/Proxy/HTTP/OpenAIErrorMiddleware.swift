import HTTPTypes
import Hummingbird
import Logging
import NIOCore
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
        } catch let error as OpenAIError {
            response = error.response()
        } catch let error as any HTTPResponseError {
            response = Self.translate(error, request: request).response()
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            response = OpenAIError(
                status: 500,
                message: "The server had an error while processing your request (request id \(context.requestID)).",
                type: "server_error"
            ).response()
        }
        response.headers[.requestID] = context.requestID
        metrics.response(status: response.status.code)
        return response
    }

    /// Hummingbird's own errors (no route, body too large, ...) in OpenAI's shape.
    static func translate(_ error: any HTTPResponseError, request: Request) -> OpenAIError {
        switch error.status {
        case .notFound:
            return OpenAIError(
                status: 404,
                message: "Invalid URL (\(request.method.rawValue) \(request.uri.path))",
                type: "invalid_request_error",
                code: "unknown_url"
            )
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
