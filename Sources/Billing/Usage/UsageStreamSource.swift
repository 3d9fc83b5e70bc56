/// The usage stream as the meter reads it: replicas append usage events to it, and a
/// consumer group hands each entry to one meter until that meter acknowledges it.
///
/// Billing defines what the meter needs; the Redis Stream behind it (`XREADGROUP`,
/// `XACK`, `XAUTOCLAIM`) is implemented where Redis is known, in Proxy.
public protocol UsageStreamSource: Sendable {
    /// Where the stream is, for logs: never a password.
    var location: String { get }

    /// Creates the meters' consumer group, reading from the stream's start, if it does not
    /// exist yet (and the stream with it). A group that exists already is left as it is.
    func createGroup() async throws

    /// Entries handed to `consumer` before and not acknowledged (it stopped or failed
    /// mid-batch), oldest first, after the entry id `after` (`"0"` for the first page).
    func readPending(consumer: String, after: String, count: Int) async throws -> [UsageStreamEntry]

    /// Entries no consumer of the group has been handed yet, oldest first; they become
    /// `consumer`'s pending entries until acknowledged.
    /// - Parameter block: how long to wait for one when there is none; nil does not wait.
    func readNew(consumer: String, count: Int, block: Duration?) async throws -> [UsageStreamEntry]

    /// Acknowledges entries whose events the ledger holds, and removes them from the
    /// stream so it does not grow.
    func acknowledge(_ ids: [String]) async throws

    /// Takes over entries another consumer was handed and left unacknowledged for at least
    /// `minimumIdle` (a meter that was killed, or hangs), scanning from the entry id `start`
    /// (`"0-0"` for the beginning).
    /// - Returns: the entries now pending for `consumer`, and where the next scan starts:
    ///   `"0-0"` once the whole stream was scanned.
    func claimIdle(consumer: String, minimumIdle: Duration, start: String, count: Int) async throws
        -> (entries: [UsageStreamEntry], next: String)
}

/// One entry of the usage stream.
public struct UsageStreamEntry: Sendable, Equatable {
    /// What an entry holds.
    public enum Body: Sendable, Equatable {
        /// A usage event's wire JSON (``UsageEvent/wireJSON()``), not decoded yet.
        case event(String)
        /// The entry is pending but no longer in the stream: there is nothing to store.
        case deleted
        /// Not a usage event at all (no event field); says what was there, for the log.
        case malformed(String)
    }

    /// The stream's id of the entry (`1767225600000-0`).
    public var id: String
    public var body: Body

    public init(id: String, body: Body) {
        self.id = id
        self.body = body
    }
}
