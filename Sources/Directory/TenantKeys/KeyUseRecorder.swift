import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Collects when tenant keys and personal access tokens authenticated requests and writes
/// the latest time of each to the directory in batches, so no request waits for the disk.
/// Runs as a `Service`; on graceful shutdown it writes what is pending before returning.
public final class KeyUseRecorder: Service, Sendable {
    private struct Pending {
        var keys: [String: Date] = [:]
        var credentials: [String: Date] = [:]
    }

    private let directory: Directory
    private let flushInterval: Duration
    private let logger: Logger
    private let pending = Mutex(Pending())

    public init(directory: Directory, flushInterval: Duration = .milliseconds(250), logger: Logger) {
        self.directory = directory
        self.flushInterval = flushInterval
        self.logger = logger
    }

    /// Notes that a tenant key authenticated a request at `date`; returns at once.
    public func record(keyID: String, at date: Date) {
        pending.withLock { pending in
            if let known = pending.keys[keyID], known >= date { return }
            pending.keys[keyID] = date
        }
    }

    /// Notes that a personal access token authenticated a request at `date`.
    public func record(credentialID: String, at date: Date) {
        pending.withLock { pending in
            if let known = pending.credentials[credentialID], known >= date { return }
            pending.credentials[credentialID] = date
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: self.flushInterval)
            }
            if Task.isCancelled { break }
            await flush()
        }
        let batch = take()
        do {
            try directory.touchKeysBlocking(batch.keys)
            try directory.touchCredentialsBlocking(batch.credentials)
        } catch {
            logger.error("last-use times lost at shutdown", metadata: ["error": "\(error)", "keys": "\(batch.keys.count)"])
        }
    }

    /// Writes every time noted so far; on failure keeps them for the next flush.
    public func flush() async {
        let batch = take()
        do {
            try await directory.touchKeys(batch.keys)
            try await directory.touchCredentials(batch.credentials)
        } catch {
            logger.error("writing last-use times failed; will retry", metadata: ["error": "\(error)", "keys": "\(batch.keys.count)"])
            pending.withLock { pending in
                pending.keys.merge(batch.keys) { max($0, $1) }
                pending.credentials.merge(batch.credentials) { max($0, $1) }
            }
        }
    }

    private func take() -> Pending {
        pending.withLock { pending in
            defer { pending = Pending() }
            return pending
        }
    }
}
