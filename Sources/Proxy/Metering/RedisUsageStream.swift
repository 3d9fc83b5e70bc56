import Billing
import Logging
import Pools

/// The usage stream in Redis: replicas append their usage events to it (`XADD`), and
/// `switchyard meter`, the one process that writes the ledger, consumes it through a
/// consumer group. Each entry has one field, `e`, the event's wire JSON. Replicas use it
/// as their writer's ``UsageSink``; the meter reads it as a ``UsageStreamSource``, with a
/// client of its own (its reads block for a while).
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

// MARK: - Reading, for the meter

extension RedisUsageStream: UsageStreamSource {
    public var location: String { "\(client.configuration) \(key) group \(Self.group)" }

    /// `XGROUP CREATE … 0 MKSTREAM`: the group starts at the stream's first entry, so
    /// events appended before any meter ran are metered too.
    public func createGroup() async throws {
        let reply = try await client.command(["XGROUP", "CREATE", key, Self.group, "0", "MKSTREAM"])
        if case .error(let message) = reply, message.hasPrefix("BUSYGROUP") { return }
        _ = try reply.checked()
    }

    public func readPending(consumer: String, after: String, count: Int) async throws -> [UsageStreamEntry] {
        let reply = try await client.command([
            "XREADGROUP", "GROUP", Self.group, consumer, "COUNT", String(count), "STREAMS", key, after,
        ]).checked()
        return try Self.streamEntries(reply)
    }

    public func readNew(consumer: String, count: Int, block: Duration?) async throws -> [UsageStreamEntry] {
        var command = ["XREADGROUP", "GROUP", Self.group, consumer, "COUNT", String(count)]
        if let block { command += ["BLOCK", String(max(1, Self.milliseconds(block)))] }
        let reply = try await client.command(command + ["STREAMS", key, ">"]).checked()
        return try Self.streamEntries(reply)
    }

    /// `XACK` then `XDEL`, in one round trip: the meters' group is the stream's only reader.
    public func acknowledge(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        for reply in try await client.pipeline([["XACK", key, Self.group] + ids, ["XDEL", key] + ids]) {
            _ = try reply.checked()
        }
    }

    /// `XAUTOCLAIM`. Redis 7 also answers the ids of pending entries no longer in the
    /// stream, and drops them from the group itself; Redis 6.2 answers them as entries
    /// without fields, which come back as ``UsageStreamEntry/Body/deleted``.
    public func claimIdle(consumer: String, minimumIdle: Duration, start: String, count: Int) async throws
        -> (entries: [UsageStreamEntry], next: String)
    {
        let reply = try await client.command([
            "XAUTOCLAIM", key, Self.group, consumer, String(max(0, Self.milliseconds(minimumIdle))), start,
            "COUNT", String(count),
        ]).checked()
        guard let parts = reply.array, parts.count >= 2, let next = parts[0].string else {
            throw UsageStreamReplyError(command: "XAUTOCLAIM", reply: reply)
        }
        return (try Self.entries(parts[1], command: "XAUTOCLAIM"), next)
    }

    // MARK: Replies

    /// The entries of an `XREADGROUP` reply for this one stream: nil when none came in time.
    private static func streamEntries(_ reply: RedisReply) throws -> [UsageStreamEntry] {
        if reply.isNil { return [] }
        guard let streams = reply.array else { throw UsageStreamReplyError(command: "XREADGROUP", reply: reply) }
        var entries: [UsageStreamEntry] = []
        for stream in streams {
            guard let pair = stream.array, pair.count == 2 else {
                throw UsageStreamReplyError(command: "XREADGROUP", reply: reply)
            }
            entries += try Self.entries(pair[1], command: "XREADGROUP")
        }
        return entries
    }

    /// `[[id, [field, value, …]], …]`; an entry's fields are nil when it was deleted.
    private static func entries(_ reply: RedisReply, command: String) throws -> [UsageStreamEntry] {
        guard let list = reply.array else { throw UsageStreamReplyError(command: command, reply: reply) }
        return try list.map { item in
            guard let pair = item.array, pair.count == 2, let id = pair[0].string else {
                throw UsageStreamReplyError(command: command, reply: item)
            }
            return UsageStreamEntry(id: id, body: body(of: pair[1]))
        }
    }

    private static func body(of fields: RedisReply) -> UsageStreamEntry.Body {
        guard let fields = fields.array else { return .deleted }
        if fields.isEmpty { return .deleted }
        var names: [String] = []
        for index in stride(from: 0, to: fields.count - 1, by: 2) {
            let name = fields[index].string ?? ""
            if name == "e", let value = fields[index + 1].string { return .event(value) }
            names.append(name)
        }
        return .malformed("no field e (fields: \(names.joined(separator: ", ")))")
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let parts = duration.components
        return Int(parts.seconds) * 1000 + Int(parts.attoseconds / 1_000_000_000_000_000)
    }
}

/// Redis answered the usage stream's commands with something they never answer.
struct UsageStreamReplyError: Error, CustomStringConvertible {
    let command: String
    let reply: RedisReply

    var description: String {
        let text = "\(reply)"
        return "unexpected reply to \(command): \(text.count <= 200 ? text : String(text.prefix(200)) + "…")"
    }
}

extension RedisUsageStream {
    /// A Redis client for a meter: connections of its own, since each read holds one
    /// for up to `block`, with a command timeout beyond that.
    /// - Throws: ``RedisError/invalidURL`` for a URL that cannot be used.
    public static func meterClient(url: String, block: Duration = .seconds(1)) throws -> RedisClient {
        RedisClient(configuration: try RedisConfiguration(url: url, commandTimeout: block + .seconds(4), poolSize: 2))
    }
}
