import Directory
import Billing
import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encrypts provider keys at rest with AES-GCM under the master key.
public struct ProviderKeyCipher: Sendable {
    private let masterKey: SymmetricKey

    /// - Parameter masterKey: a 256-bit key.
    public init(masterKey: SymmetricKey) {
        precondition(masterKey.bitCount == 256, "the master key must be 256 bits")
        self.masterKey = masterKey
    }

    // MARK: Sealing

    /// Seals a secret as an AES-GCM combined box (nonce | ciphertext | tag), with the key id
    /// as authenticated data so a sealed secret cannot be moved to another row.
    public func seal(_ secret: String, keyID: String) throws -> [UInt8] {
        try seal(secret, keyID: keyID, authenticating: keyID)
    }

    private func seal(_ secret: String, keyID: String, authenticating data: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(Array(secret.utf8), using: masterKey, authenticating: Array(data.utf8))
        guard let combined = box.combined else { throw ProviderKeyCipherError.cannotSeal(keyID: keyID) }
        return Array(combined)
    }

    /// Seals a provider key bound to its id and its provider: a sealed secret moved to
    /// another row, or a row pointed at another provider, no longer opens, so a key is
    /// only ever sent to the provider it was added for.
    public func seal(_ secret: String, keyID: String, provider: String) throws -> [UInt8] {
        try seal(secret, keyID: keyID, authenticating: Self.binding(keyID: keyID, provider: provider))
    }

    /// Opens what `seal(_:keyID:provider:)` made for the same key id and provider.
    public func open(_ sealed: [UInt8], keyID: String, provider: String) throws -> String {
        try open(sealed, keyID: keyID, authenticating: Self.binding(keyID: keyID, provider: provider))
    }

    static func binding(keyID: String, provider: String) -> String { provider + "\n" + keyID }

    /// Opens what `seal` made for the same key id.
    /// - Throws: `ProviderKeyCipherError` for an erased secret, a wrong master key, another
    ///   key's box or damaged data.
    public func open(_ sealed: [UInt8], keyID: String) throws -> String {
        try open(sealed, keyID: keyID, authenticating: keyID)
    }

    private func open(_ sealed: [UInt8], keyID: String, authenticating data: String) throws -> String {
        guard !sealed.isEmpty else { throw ProviderKeyCipherError.secretErased(keyID: keyID) }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            let plain = try AES.GCM.open(box, using: masterKey, authenticating: Array(data.utf8))
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw ProviderKeyCipherError.cannotOpen(keyID: keyID)
        }
    }

    /// The last four characters of a secret, to tell keys apart; empty for a secret shorter
    /// than eight characters, where four would give away too much of it.
    public static func lastFour(of secret: String) -> String {
        secret.count >= 8 ? String(secret.suffix(4)) : ""
    }

    // MARK: The master key

    static let environmentVariable = "SWITCHYARD_MASTER_KEY"

    /// The master key file for a database path: `X.sqlite` -> `X.master-key`.
    public static func filePath(forDatabase path: String) -> String {
        URL(fileURLWithPath: path).deletingPathExtension().appendingPathExtension("master-key").path
    }

    /// The cipher under the master key: `SWITCHYARD_MASTER_KEY` (base64 of 32 bytes, or 64 hex
    /// characters) wins; else the file at `filePath(forDatabase:)`, created with a new random
    /// key and mode 0600 if absent.
    /// - Returns: the cipher, and whether the key file was just created (so it can be backed up).
    /// - Throws: `ProviderKeyCipherError` for a malformed key, or a key file that group or
    ///   others may read.
    public static func resolve(
        environment: [String: String],
        databasePath: String
    ) throws -> (cipher: ProviderKeyCipher, createdFile: Bool) {
        if let text = environment[environmentVariable], !text.isEmpty {
            guard let key = parseKey(text) else { throw ProviderKeyCipherError.malformedEnvironmentKey }
            return (ProviderKeyCipher(masterKey: key), false)
        }
        let path = filePath(forDatabase: databasePath)
        if let key = try readKeyFile(at: path) { return (ProviderKeyCipher(masterKey: key), false) }
        if let key = try createKeyFile(at: path) { return (ProviderKeyCipher(masterKey: key), true) }
        // Another process created the file first: use its key.
        guard let key = try readKeyFile(at: path) else { throw ProviderKeyCipherError.cannotWriteKeyFile(path: path) }
        return (ProviderKeyCipher(masterKey: key), false)
    }

    /// Reads 32 bytes written as base64 or as 64 hex characters, ignoring surrounding whitespace.
    static func parseKey(_ text: String) -> SymmetricKey? {
        let text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.utf8.count == 64, let bytes = hexBytes(text) { return SymmetricKey(data: bytes) }
        if let data = Data(base64Encoded: text), data.count == 32 { return SymmetricKey(data: data) }
        return nil
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var high: UInt8?
        for character in text.utf8 {
            guard let nibble = hexValue(character) else { return nil }
            if let pending = high {
                bytes.append(pending << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return high == nil ? bytes : nil
    }

    private static func hexValue(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The key in the file at `path`, or nil when there is no file.
    private static func readKeyFile(at path: String) throws -> SymmetricKey? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        guard let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue else {
            throw ProviderKeyCipherError.cannotReadKeyFile(path: path)
        }
        guard mode & 0o077 == 0 else { throw ProviderKeyCipherError.keyFileTooOpen(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProviderKeyCipherError.cannotReadKeyFile(path: path)
        }
        guard let key = parseKey(String(decoding: data, as: UTF8.self)) else {
            throw ProviderKeyCipherError.malformedKeyFile(path: path)
        }
        return key
    }

    /// Writes a new random key to `path`, or returns nil when the file appeared meanwhile.
    ///
    /// The key goes to a private temporary file first, which is then hard-linked into place:
    /// the file is never readable by others, never half written, and a replica starting at
    /// the same moment cannot replace a key that may already have sealed secrets.
    private static func createKeyFile(at path: String) throws -> SymmetricKey? {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try PrivateFiles.createDirectory(directory.path)
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let temporary = path + ".tmp-" + Identifier.randomBase62(length: 12)
        let descriptor = createExclusively(temporary)
        guard descriptor >= 0 else { throw ProviderKeyCipherError.cannotWriteKeyFile(path: path) }
        defer { unlink(temporary) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        let synced = fsync(descriptor)
        close(descriptor)
        guard written == bytes.count, synced == 0 else { throw ProviderKeyCipherError.cannotWriteKeyFile(path: path) }
        guard link(temporary, path) == 0 else {
            if errno == EEXIST { return nil }
            throw ProviderKeyCipherError.cannotWriteKeyFile(path: path)
        }
        return key
    }

    /// A new file open for writing with mode 0600, or -1 if it exists or cannot be made.
    private static func createExclusively(_ path: String) -> Int32 {
        #if canImport(Glibc)
        Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #else
        Darwin.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #endif
    }
}

extension ProviderKeyCipher: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    // Printing or dumping a cipher must never show the master key.
    public var description: String { "ProviderKeyCipher(master key hidden)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}

/// Why the master key or a provider key secret could not be used. Messages name files and
/// key ids, never a secret or key material.
public struct ProviderKeyCipherError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case malformedKey
        case keyFileTooOpen
        case keyFileUnusable
        case cannotSeal
        case cannotOpen
        case secretErased
    }

    private let code: Code
    public let description: String

    /// Errors are equal when they are of the same kind, whatever file or key they name.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }

    /// `SWITCHYARD_MASTER_KEY` or the key file does not hold 32 bytes.
    public static let malformedKey = Self(code: .malformedKey, description: "the master key must be 32 bytes as base64 or 64 hex characters")
    /// The key file may be read or written by group or others.
    public static let keyFileTooOpen = Self(code: .keyFileTooOpen, description: "the master key file must not be readable by group or others")
    /// The key file cannot be read or written.
    public static let keyFileUnusable = Self(code: .keyFileUnusable, description: "the master key file cannot be used")
    /// A secret could not be sealed.
    public static let cannotSeal = Self(code: .cannotSeal, description: "a provider key cannot be encrypted")
    /// A sealed secret does not open: wrong master key, another key's box, or damaged data.
    public static let cannotOpen = Self(code: .cannotOpen, description: "a provider key cannot be decrypted: wrong master key or damaged data")
    /// The secret was erased when the key was retired.
    public static let secretErased = Self(code: .secretErased, description: "a provider key has no secret: it was retired")

    static let malformedEnvironmentKey = Self(
        code: .malformedKey, description: "\(ProviderKeyCipher.environmentVariable) must be 32 bytes as base64 or 64 hex characters"
    )

    static func malformedKeyFile(path: String) -> Self {
        Self(code: .malformedKey, description: "master key file \(path) must hold 32 bytes as base64 or 64 hex characters")
    }

    static func keyFileTooOpen(path: String) -> Self {
        Self(code: .keyFileTooOpen, description: "master key file \(path) must not be readable or writable by group or others (chmod 600 \(path))")
    }

    static func cannotReadKeyFile(path: String) -> Self {
        Self(code: .keyFileUnusable, description: "master key file \(path) cannot be read")
    }

    static func cannotWriteKeyFile(path: String) -> Self {
        Self(code: .keyFileUnusable, description: "master key file \(path) cannot be created")
    }

    static func cannotSeal(keyID: String) -> Self {
        Self(code: .cannotSeal, description: "provider key \(keyID) cannot be encrypted")
    }

    static func cannotOpen(keyID: String) -> Self {
        Self(code: .cannotOpen, description: "provider key \(keyID) cannot be decrypted: wrong master key or damaged data")
    }

    static func secretErased(keyID: String) -> Self {
        Self(code: .secretErased, description: "provider key \(keyID) has no secret: it was retired")
    }
}
