import Directory
import Billing
import Crypto

/// The secret form of tenant keys: `sk-sy-` and 43 base62 characters (about 256 bits).
public enum TenantKeySecret {
    public static let scheme = "sk-sy-"
    static let randomLength = 43
    /// Characters of the secret kept for display: the scheme and six random characters.
    static let displayLength = 12

    /// A new secret, its hash and its display prefix.
    public static func generate() -> (secret: String, hash: [UInt8], prefix: String) {
        let secret = scheme + Identifier.randomBase62(length: randomLength)
        return (secret, hash(secret), String(secret.prefix(displayLength)))
    }

    /// The SHA-256 of the secret's UTF-8 bytes: all the ledger ever stores.
    public static func hash(_ secret: some StringProtocol) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }

    /// Whether `candidate` could be a tenant key at all, checked before any lookup.
    public static func isWellFormed(_ candidate: Substring) -> Bool {
        guard candidate.hasPrefix(scheme), candidate.utf8.count == scheme.utf8.count + randomLength else { return false }
        return candidate.utf8.dropFirst(scheme.utf8.count).allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices {
        difference |= lhs[index] ^ rhs[index]
    }
    return difference == 0
}
