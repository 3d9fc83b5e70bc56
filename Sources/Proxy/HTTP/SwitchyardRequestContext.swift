import Hummingbird
import Logging

/// The typed context of one request: its id, and who sent it once authenticated.
public struct SwitchyardRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let requestID: String
    /// Set by the tenant-key middleware on inference routes.
    public var tenant: AuthenticatedTenant?
    /// Set by the admin middleware on management routes.
    public var admin: AdminPrincipal?
    /// The client connection the request came on; nil when served without one (router tests).
    let connection: ClientConnection?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.connection = ClientConnection.current
        self.requestID = RequestIDs.next()
        self.logger[metadataKey: "request_id"] = .string(requestID)
    }
}
