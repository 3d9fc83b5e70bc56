/// A failure of the Redis client: a bad URL, a connection that could not be made or
/// broke, a timeout, or an error reply turned into an error by ``RedisReply/checked()``.
///
/// Errors compare equal by kind only, so `#expect(throws: RedisError.timeout)` and
/// `catch let error as RedisError where error == .timeout` work whatever the detail.
/// The detail is for logs: it never contains a password.
public struct RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: String, Sendable, Hashable {
        case invalidURL
        case invalidCommand
        case connectionFailed
        case connectionClosed
        case timeout
        case protocolError
        case authenticationFailed
        case databaseSelectionFailed
        case errorReply
        case clientShutDown
    }

    private let code: Code
    /// What went wrong in words, for logs; nil when the kind says it all.
    public let detail: String?

    private init(_ code: Code, detail: String? = nil) {
        self.code = code
        self.detail = detail
    }

    /// `RedisError.<kind>`, then the detail when there is one.
    public var description: String {
        detail.map { "RedisError.\(code.rawValue): \($0)" } ?? "RedisError.\(code.rawValue)"
    }

    /// The kind alone (`timeout`, `connectionFailed`, …): short and safe as a metric label.
    public var label: String { code.rawValue }

    public static func == (lhs: RedisError, rhs: RedisError) -> Bool {
        lhs.code == rhs.code
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
    }

    // MARK: - Kinds

    /// A Redis URL that cannot be used; the detail names the part that is wrong.
    public static let invalidURL = RedisError(.invalidURL)
    /// A command with no words, or a count that does not fit.
    public static let invalidCommand = RedisError(.invalidCommand)
    /// Redis could not be reached (refused, unreachable, name not resolved).
    public static let connectionFailed = RedisError(.connectionFailed)
    /// The connection broke while a command was in flight: it may or may not have run.
    public static let connectionClosed = RedisError(.connectionClosed)
    /// Connecting, sending or waiting for a reply took longer than the configured timeout.
    public static let timeout = RedisError(.timeout)
    /// Redis sent something hiredis could not parse.
    public static let protocolError = RedisError(.protocolError)
    /// `AUTH` was refused.
    public static let authenticationFailed = RedisError(.authenticationFailed)
    /// `SELECT` was refused (for example a database number beyond `databases`).
    public static let databaseSelectionFailed = RedisError(.databaseSelectionFailed)
    /// Redis answered with an error reply; the detail is its message.
    public static let errorReply = RedisError(.errorReply)
    /// The client was shut down before the command could run.
    public static let clientShutDown = RedisError(.clientShutDown)

    static func invalidURL(_ detail: String) -> RedisError { RedisError(.invalidURL, detail: detail) }
    static func invalidCommand(_ detail: String) -> RedisError { RedisError(.invalidCommand, detail: detail) }
    static func connectionFailed(_ detail: String) -> RedisError { RedisError(.connectionFailed, detail: detail) }
    static func connectionClosed(_ detail: String) -> RedisError { RedisError(.connectionClosed, detail: detail) }
    static func timeout(_ detail: String) -> RedisError { RedisError(.timeout, detail: detail) }
    static func protocolError(_ detail: String) -> RedisError { RedisError(.protocolError, detail: detail) }
    static func authenticationFailed(_ detail: String) -> RedisError { RedisError(.authenticationFailed, detail: detail) }
    static func databaseSelectionFailed(_ detail: String) -> RedisError {
        RedisError(.databaseSelectionFailed, detail: detail)
    }
    static func errorReply(_ message: String) -> RedisError { RedisError(.errorReply, detail: message) }
}
