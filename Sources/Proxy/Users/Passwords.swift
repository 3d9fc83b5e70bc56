import Foundation
import HummingbirdBcrypt
import NIOPosix
import Providers

/// User passwords: hashed with bcrypt off the request threads, checked against a policy.
enum Passwords {
    /// bcrypt's work factor: 2^12 rounds by default, about a quarter of a second on one
    /// core; `SWITCHYARD_BCRYPT_COST` sets it from 10 to 16 (tests use 10).
    static let cost: UInt8 = {
        let asked = ProcessInfo.processInfo.environment["SWITCHYARD_BCRYPT_COST"].flatMap(UInt8.init) ?? 12
        return min(16, max(10, asked))
    }()
    /// bcrypt reads at most 72 bytes; a longer password would be cut without a word.
    static let longest = 72
    static let shortest = 12

    /// The bcrypt hash of `password`, computed on NIO's blocking thread pool.
    static func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `hash`; computed on NIO's blocking thread pool.
    static func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash of no password, checked when the email is unknown so that a sign-in takes
    /// as long whether or not the account exists.
    static let decoy = Bcrypt.hash("switchyard decoy password, never valid", cost: cost)

    /// - Throws: `OpenAIError` 400 for a password too short or too long, or with a control
    ///   character (bcrypt stops at a NUL: twelve of them would be the empty password).
    static func validate(_ password: String, param: String = "password") throws(OpenAIError) {
        let bytes = password.utf8.count
        guard bytes >= shortest, bytes <= longest else {
            throw OpenAIError.invalidRequest(
                "'\(param)' must be \(shortest) to \(longest) bytes long (bcrypt reads no more than \(longest)).", param: param
            )
        }
        guard !password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw OpenAIError.invalidRequest("'\(param)' may not contain control characters.", param: param)
        }
    }
}
