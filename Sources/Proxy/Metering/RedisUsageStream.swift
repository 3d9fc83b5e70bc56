import Billing
import Logging
import Pools

/// The usage stream in Redis: replicas append their usage events to it (`XADD`), and
/// `switchyard meter`, the one process that writes the ledger, consumes it through a
/// consumer group. Each entry has one field, `e`, the event's wire JSON.
///
/// The stream should be in a Redis that persists (`appendonly yes`): a replica removes
/// events from its spool once Redis has them.
public struct RedisUsageStream: UsageSink {
    /// The stream's key; hash-tagged like every Switchyard key, so it is Cluster-safe.
    public static let defaultKey = "sy:{usage}:events"
    /// The consumer group of the meters.
    public static let group = "meters"

    public let client: RedisClient
    public let key: String
    let logger: Logger

    public init(client: RedisClient, key: String = RedisUsageStream.defaultKey, logger: Logger) {
        self.client = client
        self.key = key
        self.logger = logger
    }

    /// Appends the events in one round trip.
    /// - Throws: when Redis cannot be reached or refuses an entry; the writer keeps the
    ///   batch in its spool and delivers it again (the meter stores a request id once).
    public func deliver(_ events: [UsageEvent]) async throws {
        let commands = events.map { event in
            ["XADD", key, "*", "e", String(decoding: event.wireJSON(), as: UTF8.self)]
        }
        for reply in try await client.pipeline(commands) {
            _ = try reply.checked()
        }
    }
}
