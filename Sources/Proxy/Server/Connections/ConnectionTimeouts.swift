import NIOCore

/// How long a client connection may stay quiet, by what it is doing: a value-type state
/// machine fed the connection's events, returning what the channel handler must do.
///
/// - A request head must arrive whole within `header` of its first byte (or of the
///   connection opening): a byte-per-second request line is cut off, however steadily it
///   trickles.
/// - A request body may pause at most `body` between two reads.
/// - Between requests, a connection may idle for `keepAlive`.
/// - While a response is being written, nothing expires as long as the client reads: a
///   stream read slowly is not idle. A client that stops reading altogether (the socket
///   stays unwritable for `send`) is closed.
struct ConnectionTimeouts {
    struct Configuration: Sendable, Equatable {
        var header: TimeAmount
        var body: TimeAmount
        var keepAlive: TimeAmount
        var send: TimeAmount
    }

    /// Which allowance ran out.
    enum Expiry: String, Sendable, Equatable {
        case header = "header_timeout"
        case body = "body_timeout"
        case keepAlive = "idle_timeout"
        case send = "send_timeout"
    }

    enum Action: Equatable {
        case none
        /// Cancel any scheduled check and check again at the deadline.
        case schedule(NIODeadline)
        case expire(Expiry)
    }

    let configuration: Configuration
    /// A request head has arrived and its end not yet.
    private var readingBody = false
    /// Requests whose head arrived and whose response has not ended.
    private var unansweredRequests = 0
    /// When the first byte of a head not yet complete arrived.
    private var headStartedAt: NIODeadline?
    /// The last read while a body is being received.
    private var lastBodyRead: NIODeadline
    /// When the connection last became idle: opened, or a response ended.
    private var idleSince: NIODeadline
    /// Whether a response has been written: idling after one is keep-alive.
    private var answeredAny = false
    /// Since when the client has read nothing Switchyard wrote (the socket unwritable).
    private var writeBlockedSince: NIODeadline?
    /// The check the handler has scheduled, if any.
    private var scheduled: NIODeadline?
    /// An allowance ran out: the connection is closing and nothing more expires.
    private var expired = false

    init(configuration: Configuration, openedAt now: NIODeadline) {
        self.configuration = configuration
        self.lastBodyRead = now
        self.idleSince = now
    }

    // MARK: Events

    /// The connection is open: the first check is due.
    mutating func start() -> Action {
        reschedule()
    }

    /// Bytes arrived from the client.
    mutating func bytesReceived(now: NIODeadline) -> Action {
        if readingBody {
            lastBodyRead = now
        } else if headStartedAt == nil {
            // A new connection's first head is due `header` after it opened; a kept-alive
            // connection's next one, `header` after its first byte.
            headStartedAt = answeredAny ? now : idleSince
        }
        return reschedule()
    }

    /// A request head was decoded.
    mutating func requestHead(now: NIODeadline) -> Action {
        headStartedAt = nil
        readingBody = true
        lastBodyRead = now
        unansweredRequests += 1
        return reschedule()
    }

    /// A request's end was decoded.
    mutating func requestEnd() -> Action {
        readingBody = false
        return reschedule()
    }

    /// A response was written to its end.
    mutating func responseEnd(now: NIODeadline) -> Action {
        unansweredRequests = max(0, unansweredRequests - 1)
        answeredAny = true
        idleSince = now
        // A next request read while the response was written starts its allowance now,
        // not while Switchyard was still answering.
        if headStartedAt != nil { headStartedAt = now }
        if readingBody { lastBodyRead = now }
        return reschedule()
    }

    /// The socket became writable (the client read) or not (its buffers are full).
    mutating func writabilityChanged(isWritable: Bool, now: NIODeadline) -> Action {
        if isWritable {
            writeBlockedSince = nil
        } else if writeBlockedSince == nil {
            writeBlockedSince = now
        }
        return reschedule()
    }

    /// The scheduled check is due.
    mutating func timerFired(now: NIODeadline) -> Action {
        scheduled = nil
        guard !expired, let (deadline, expiry) = currentDeadline else { return .none }
        if now >= deadline {
            expired = true
            return .expire(expiry)
        }
        scheduled = deadline
        return .schedule(deadline)
    }

    // MARK: Deadlines

    /// The deadline in force and what expires at it; nil while answering.
    var currentDeadline: (NIODeadline, Expiry)? {
        if let writeBlockedSince { return (writeBlockedSince + configuration.send, .send) }
        // A body is read only for the request being answered; a pipelined one waits,
        // unread, behind the response in progress and is not the client's delay.
        if readingBody, unansweredRequests <= 1 {
            return (lastBodyRead + configuration.body, .body)
        }
        if unansweredRequests > 0 { return nil }
        if let headStartedAt { return (headStartedAt + configuration.header, .header) }
        return answeredAny ? (idleSince + configuration.keepAlive, .keepAlive) : (idleSince + configuration.header, .header)
    }

    /// Schedules a check when the deadline in force comes before the scheduled one. A later
    /// deadline needs none: the earlier check finds it and schedules again.
    private mutating func reschedule() -> Action {
        guard !expired, let (deadline, _) = currentDeadline else { return .none }
        if let scheduled, scheduled <= deadline { return .none }
        scheduled = deadline
        return .schedule(deadline)
    }
}
