/// A Lua script run with `EVALSHA`, identified by the SHA-1 of its source.
///
/// The SHA-1 is computed here, in Swift, rather than learnt from a first `SCRIPT LOAD`:
/// the very first `EVALSHA` can then go out without a round trip, and the digest is the
/// same on every proxy instance and across Redis restarts. `RedisClient/evalSHA` loads the
/// script when Redis answers `NOSCRIPT` (after a restart or a `SCRIPT FLUSH`).
public struct RedisScript: Sendable, Hashable {
    /// The Lua source, sent with `SCRIPT LOAD` when Redis does not know it.
    public let source: String
    /// The lowercase hexadecimal SHA-1 of `source`, as Redis computes it.
    public let sha1: String

    /// - Parameter source: the Lua source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(of: Array(source.utf8))
    }
}
