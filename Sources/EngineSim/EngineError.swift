import Hummingbird

/// A client-facing failure of the simulated engine, rendered as an OpenAI-shaped error body.
struct EngineError: Error, Sendable {
    let status: HTTPResponse.Status
    let message: String
    let type: String
    let param: String?
    let code: String?

    /// A 400 the client can fix by changing its request.
    static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> EngineError {
        EngineError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// The `{"error":{"message","type","param","code"}}` response for this error.
    func response() -> Response {
        let json = """
            {"error":{"message":\(JSONText.quoted(message)),"type":\(JSONText.quoted(type)),\
            "param":\(JSONText.quotedOrNull(param)),"code":\(JSONText.quotedOrNull(code))}}
            """
        return EngineSimulator.jsonResponse(json, status: status)
    }
}

/// Turns every error a route throws, including Hummingbird's own 404 and 413, into an
/// OpenAI-shaped JSON error, because OpenAI clients parse error bodies as JSON.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as EngineError {
            return error.response()
        } catch let error as HTTPError {
            return Self.engineError(for: error, request: request).response()
        } catch {
            context.logger.error("Unexpected error in engine simulator route", metadata: ["error": "\(error)"])
            return EngineError(
                status: .internalServerError,
                message: "The engine simulator failed to handle the request.",
                type: "internal_server_error",
                param: nil,
                code: nil
            ).response()
        }
    }

    private static func engineError(for error: HTTPError, request: Request) -> EngineError {
        let message: String
        let code: String?
        switch error.status {
        case .notFound:
            message = "Invalid URL (\(request.method) \(request.uri.path))"
            code = "not_found"
        case .methodNotAllowed:
            message = "Method \(request.method) is not allowed for \(request.uri.path)"
            code = "method_not_allowed"
        case .contentTooLarge:
            message = "The request body is too large."
            code = "request_too_large"
        default:
            message = error.body ?? error.status.reasonPhrase
            code = nil
        }
        return EngineError(status: error.status, message: message, type: "invalid_request_error", param: nil, code: code)
    }
}
