import HTTPTypes
import Hummingbird
import Providers

/// Registers routes on the router and remembers each path's methods, so that a known
/// path asked with another method is a 405 listing the allowed ones in `allow` (RFC 9110
/// §15.5.6), not a 404.
final class KnownRoutes: RouterMethods {
    typealias Context = SwitchyardRequestContext

    let router: Router<Context>
    private var methods: [(path: RouterPath, methods: [HTTPRequest.Method])] = []

    init(router: Router<Context>) {
        self.router = router
    }

    @discardableResult
    func on<Responder: HTTPResponder>(
        _ path: RouterPath, method: HTTPRequest.Method, responder: Responder
    ) -> Self where Responder.Context == Context {
        router.on(path, method: method, responder: responder)
        if let index = methods.firstIndex(where: { $0.path.description == path.description }) {
            methods[index].methods.append(method)
        } else {
            methods.append((path, [method]))
        }
        return self
    }

    @discardableResult
    func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        router.add(middleware: middleware)
        return self
    }

    /// The methods a 405 is answered for, when the path does not serve them.
    private static let answered: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace]

    /// Adds the 405 answers; call once every route is registered.
    func addMethodNotAllowedAnswers() {
        for (path, registered) in methods {
            // The router answers HEAD itself wherever GET is served.
            let served = registered.contains(.get) && !registered.contains(.head) ? registered + [.head] : registered
            let allow = served.map(\.rawValue).joined(separator: ", ")
            for method in Self.answered where !served.contains(method) {
                router.on(path, method: method) { request, _ -> Response in
                    var response = OpenAIError(
                        status: 405,
                        message: "Method \(request.method.rawValue) is not allowed for \(request.uri.path); use \(allow).",
                        type: "invalid_request_error",
                        code: "method_not_allowed"
                    ).response()
                    response.headers[.allow] = allow
                    return response
                }
            }
        }
    }
}
