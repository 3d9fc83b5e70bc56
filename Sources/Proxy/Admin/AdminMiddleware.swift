import Hummingbird

/// Authenticates management routes by the admin token.
struct AdminMiddleware: RouterMiddleware {
    typealias Context = SwitchyardRequestContext

    let authenticator: AdminAuthenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.admin = try authenticator.authenticate(authorization: request.headers[.authorization])
        return try await next(request, context)
    }
}
