import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Collects when tenant keys authenticated requests and writes the latest time of each to
/// the directory in batches, so no request waits for the disk. Runs as a `Service`; on
/// graceful shutdown it writes what is pending before returning.
public final class KeyUseRecorder: Service, Sendable {
    private let directory: Directory
    private let flushInterval: Duration
    private let logger: Logger
    private let pending = Mutex<[String: Date]>([:])

    public init(directory: Directory, flushInterval: Duration = .milliseconds(250), logger: Logger) {
        self.directory = directory
        self.flushInterval = flushInterval
        self.logger = logger
    }

    /// Notes that a tenant key authenticated a request at `date`; returns at once.
    public func record(keyID: String, at date: Date) {
        pending.withLock { pending in
            if let known = pending[keyID], known >= date { return }
            pending[keyID] = date
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
            try directory.touchKeysBlocking(batch)
        } catch {
            logger.error("key last-use times lost at shutdown", metadata: ["error": "\(error)", "keys": "\(batch.count)"])
        }
    }

    /// Writes every time noted so far; on failure keeps them for the next flush.
    public func flush() async {
        let batch = take()
        do {
            try await directory.touchKeys(batch)
        } catch {
            logger.error("writing key last-use times failed; will retry", metadata: ["error": "\(error)", "keys": "\(batch.count)"])
            pending.withLock { $0.merge(batch) { max($0, $1) } }
        }
    }

    private func take() -> [String: Date] {
        pending.withLock { pending in
            defer { pending = [:] }
            return pending
        }
    }
}
