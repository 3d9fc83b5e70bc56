import CHiredis

/// One reply from Redis, copied out of hiredis's `redisReply` so that no C memory
/// outlives the call that produced it.
///
/// Bulk strings are decoded as UTF-8: every key and value Switchyard writes is a Swift
/// `String`, so they round-trip exactly, NUL bytes and newlines included.
public enum RedisReply: Sendable, Hashable {
    /// A bulk string (`$`).
    case string(String)
    /// A status line (`+OK`, `+PONG`, `+QUEUED`).
    case status(String)
    /// An integer (`:`).
    case integer(Int)
    /// A double (RESP3 `,`); only produced when a connection speaks RESP3.
    case double(Double)
    /// A missing value: a nil bulk string or nil array.
    case `nil`
    /// An array (`*`) of replies; RESP3 maps, sets and pushes also arrive flattened as arrays.
    case array([RedisReply])
    /// An error reply (`-ERR …`, `-NOSCRIPT …`): Redis answered, the command failed.
    case error(String)
}

extension RedisReply {
    /// The text of a bulk string or status; nil otherwise.
    public var string: String? {
        switch self {
        case .string(let value), .status(let value): value
        default: nil
        }
    }

    /// The value of an integer reply, or of a bulk string that holds a decimal integer
    /// (what `GET` returns for a counter); nil otherwise.
    public var integer: Int? {
        switch self {
        case .integer(let value): value
        case .string(let value): Int(value)
        default: nil
        }
    }

    /// The elements of an array reply; nil otherwise.
    public var array: [RedisReply]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    /// True for a nil bulk string or array.
    public var isNil: Bool {
        if case .nil = self { true } else { false }
    }

    /// This reply, or ``RedisError/errorReply`` carrying the message if it is an error reply.
    public func checked() throws(RedisError) -> RedisReply {
        if case .error(let message) = self { throw .errorReply(message) }
        return self
    }
}

// MARK: - Copying out of hiredis

extension RedisReply {
    /// Deep-copies a hiredis reply. The caller still owns `reply` and frees it.
    package init(copying reply: UnsafePointer<redisReply>) {
        let type = reply.pointee.type
        switch type {
        case REDIS_REPLY_STRING, REDIS_REPLY_VERB, REDIS_REPLY_BIGNUM:
            self = .string(Self.text(of: reply))
        case REDIS_REPLY_STATUS:
            self = .status(Self.text(of: reply))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(of: reply))
        case REDIS_REPLY_INTEGER, REDIS_REPLY_BOOL:
            self = .integer(Int(reply.pointee.integer))
        case REDIS_REPLY_DOUBLE:
            // hiredis 1.x keeps the textual form in `str` next to `dval`; 0.14 has no `dval`.
            self = Double(Self.text(of: reply)).map { .double($0) } ?? .string(Self.text(of: reply))
        case REDIS_REPLY_ARRAY, REDIS_REPLY_MAP, REDIS_REPLY_SET, REDIS_REPLY_PUSH, REDIS_REPLY_ATTR:
            let count = Int(reply.pointee.elements)
            guard count > 0, let elements = reply.pointee.element else {
                self = .array([])
                return
            }
            self = .array((0..<count).map { index in
                elements[index].map { RedisReply(copying: $0) } ?? .nil
            })
        default:
            self = .nil
        }
    }

    private static func text(of reply: UnsafePointer<redisReply>) -> String {
        guard let bytes = reply.pointee.str, reply.pointee.len > 0 else { return "" }
        let buffer = UnsafeRawBufferPointer(start: bytes, count: Int(reply.pointee.len))
        return String(decoding: buffer, as: UTF8.self)
    }
}
