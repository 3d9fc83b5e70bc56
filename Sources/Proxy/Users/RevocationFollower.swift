import Directory
import Logging
import ServiceLifecycle

/// Makes revocations take effect on this replica within a poll interval, whichever
/// replica made them: it reads the directory's revocations past the last it saw and drops
/// what the tenant-key cache holds of the revoked keys, removed users and changed tenants.
/// (Sessions and access tokens are not cached: they are looked up on every request.)
final class RevocationFollower: Service, Sendable {
    private let directory: Directory
    private let authenticator: TenantAuthenticator
    private let interval: Duration
    private let logger: Logger

    init(directory: Directory, authenticator: TenantAuthenticator, interval: Duration, logger: Logger) {
        self.directory = directory
        self.authenticator = authenticator
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        var revision = (try? await directory.revocationRevision()) ?? 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            do {
                let (latest, entries) = try await directory.revocations(after: revision)
                for entry in entries {
                    switch entry.kind {
                    case "key": authenticator.invalidate(keyID: entry.subject)
                    case "user": authenticator.invalidate(userID: entry.subject)
                    case "tenant": authenticator.invalidate(tenantID: entry.subject)
                    default: break
                    }
                }
                revision = latest
            } catch {
                logger.warning("reading revocations failed; will retry", metadata: ["error": "\(error)"])
            }
        }
    }
}
