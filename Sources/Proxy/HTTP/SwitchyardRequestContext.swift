import Hummingbird
import Logging

/// The typed context of one request: its id, and who sent it once authenticated (a
/// management route's principal is in its `ManagementContext`).
public struct SwitchyardRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let requestID: String
    /// Set by the tenant-key middleware on inference routes.
    public var tenant: AuthenticatedTenant?
    /// The client connection the request came on; nil when served without one (router tests).
    let connection: ClientConnection?
    /// The client's IP address, for the audit log and sign-in limits.
    let remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
        self.connection = ClientConnection.current
        self.requestID = RequestIDs.next()
        self.logger[metadataKey: "request_id"] = .string(requestID)
    }
}
