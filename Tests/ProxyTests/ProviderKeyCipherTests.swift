import Crypto
import Foundation
import Testing

@testable import Proxy

@Suite("Provider key cipher")
struct ProviderKeyCipherTests {
    private let secret = "sk-proj-TopSecretUpstreamKey1234567890abcd"
    private let hexKey = String(repeating: "0f1e2d3c4b5a6978", count: 4)

    private func cipher() -> ProviderKeyCipher {
        ProviderKeyCipher(masterKey: SymmetricKey(size: .bits256))
    }

    /// A fresh folder with a database path in it, removed after `body`.
    private func withFolder(_ body: (URL, String) throws -> Void) throws {
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-cipher-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try body(folder, folder.appendingPathComponent("switchyard.sqlite").path)
    }

    private func mode(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require((attributes[.posixPermissions] as? NSNumber)?.intValue) & 0o777
    }

    /// The error `body` throws, as a cipher error.
    private func cipherError(_ body: () throws -> Void) throws -> ProviderKeyCipherError {
        do {
            try body()
        } catch let error as ProviderKeyCipherError {
            return error
        }
        Issue.record("expected a ProviderKeyCipherError")
        throw CancellationError()
    }

    // MARK: Sealing

    @Test("a sealed secret opens to itself")
    func roundTrip() throws {
        let cipher = cipher()
        let sealed = try cipher.seal(secret, keyID: "pk_a")
        // nonce (12) + ciphertext + tag (16)
        #expect(sealed.count == 12 + secret.utf8.count + 16)
        #expect(!Data(sealed).contains(Data(secret.utf8)))
        #expect(try cipher.open(sealed, keyID: "pk_a") == secret)
        #expect(try cipher.open(try cipher.seal("", keyID: "pk_a"), keyID: "pk_a") == "")
        #expect(try cipher.open(try cipher.seal("ключ-🔑", keyID: "pk_a"), keyID: "pk_a") == "ключ-🔑")
    }

    @Test("a provider key opens only for the provider it was sealed for")
    func boundToProvider() throws {
        let cipher = cipher()
        let sealed = try cipher.seal(secret, keyID: "pk_a", provider: "openai")
        #expect(try cipher.open(sealed, keyID: "pk_a", provider: "openai") == secret)
        #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher.open(sealed, keyID: "pk_a", provider: "anthropic") }
        #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher.open(sealed, keyID: "pk_b", provider: "openai") }
        #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher.open(sealed, keyID: "pk_a") }
    }

    @Test("a box does not open under another key id")
    func wrongKeyID() throws {
        let cipher = cipher()
        let sealed = try cipher.seal(secret, keyID: "pk_a")
        #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher.open(sealed, keyID: "pk_b") }
    }

    @Test("a box does not open under another master key")
    func wrongMasterKey() throws {
        let sealed = try cipher().seal(secret, keyID: "pk_a")
        #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher().open(sealed, keyID: "pk_a") }
    }

    @Test("changing any byte of a box makes it fail")
    func tampered() throws {
        let cipher = cipher()
        let sealed = try cipher.seal(secret, keyID: "pk_a")
        for index in [0, 11, 12, sealed.count / 2, sealed.count - 1] {
            var damaged = sealed
            damaged[index] ^= 0x01
            #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher.open(damaged, keyID: "pk_a") }
        }
        #expect(throws: ProviderKeyCipherError.cannotOpen) { try cipher.open(Array(sealed.prefix(20)), keyID: "pk_a") }
        #expect(throws: ProviderKeyCipherError.secretErased) { try cipher.open([], keyID: "pk_a") }
    }

    @Test("sealing the same secret twice gives different boxes")
    func freshNonce() throws {
        let cipher = cipher()
        let first = try cipher.seal(secret, keyID: "pk_a")
        let second = try cipher.seal(secret, keyID: "pk_a")
        #expect(first != second)
        #expect(first.prefix(12) != second.prefix(12))
        #expect(try cipher.open(second, keyID: "pk_a") == secret)
    }

    @Test("the last four characters, and none of a short secret")
    func lastFour() {
        #expect(ProviderKeyCipher.lastFour(of: secret) == "abcd")
        #expect(ProviderKeyCipher.lastFour(of: "12345678") == "5678")
        #expect(ProviderKeyCipher.lastFour(of: "1234567") == "")
        #expect(ProviderKeyCipher.lastFour(of: "") == "")
    }

    // MARK: The master key

    @Test("the key file sits beside the database")
    func filePath() {
        #expect(ProviderKeyCipher.filePath(forDatabase: "/var/lib/switchyard/ledger.sqlite") == "/var/lib/switchyard/ledger.master-key")
    }

    @Test("SWITCHYARD_MASTER_KEY is accepted as base64 or hex, and wins over the file")
    func environmentKey() throws {
        try withFolder { folder, database in
            let bytes = (0..<32).map { UInt8($0 * 7 % 256) }
            let base64 = Data(bytes).base64EncodedString()
            let hex = bytes.map { String(format: "%02x", $0) }.joined()

            let fromBase64 = try ProviderKeyCipher.resolve(environment: ["SWITCHYARD_MASTER_KEY": base64], databasePath: database)
            let fromHex = try ProviderKeyCipher.resolve(environment: ["SWITCHYARD_MASTER_KEY": " \(hex.uppercased())\n"], databasePath: database)
            #expect(!fromBase64.createdFile && !fromHex.createdFile)
            #expect(!FileManager.default.fileExists(atPath: ProviderKeyCipher.filePath(forDatabase: database)))

            // Both spellings are the same key.
            let sealed = try fromBase64.cipher.seal(secret, keyID: "pk_a")
            #expect(try fromHex.cipher.open(sealed, keyID: "pk_a") == secret)
            let direct = ProviderKeyCipher(masterKey: SymmetricKey(data: bytes))
            #expect(try direct.open(sealed, keyID: "pk_a") == secret)

            let fromOtherHex = try ProviderKeyCipher.resolve(environment: ["SWITCHYARD_MASTER_KEY": hexKey], databasePath: database)
            #expect(throws: ProviderKeyCipherError.cannotOpen) { try fromOtherHex.cipher.open(sealed, keyID: "pk_a") }
        }
    }

    @Test("a malformed SWITCHYARD_MASTER_KEY is refused without echoing it")
    func malformedEnvironmentKey() throws {
        try withFolder { _, database in
            let malformed = [
                Data(repeating: 1, count: 16).base64EncodedString(),
                Data(repeating: 1, count: 33).base64EncodedString(),
                String(hexKey.dropLast()),
                String(hexKey.dropLast()) + "g",
                "not a key at all, not at all",
            ]
            for value in malformed {
                let error = try cipherError {
                    _ = try ProviderKeyCipher.resolve(environment: ["SWITCHYARD_MASTER_KEY": value], databasePath: database)
                }
                #expect(error == .malformedKey)
                #expect(error.description == "SWITCHYARD_MASTER_KEY must be 32 bytes as base64 or 64 hex characters")
                #expect(!error.description.contains(value))
            }
        }
    }

    @Test("without the variable, a 0600 key file is created and reused")
    func keyFile() throws {
        try withFolder { _, database in
            let path = ProviderKeyCipher.filePath(forDatabase: database)
            let first = try ProviderKeyCipher.resolve(environment: [:], databasePath: database)
            #expect(first.createdFile)
            #expect(try mode(of: path) == 0o600)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines))?.count == 32)

            let sealed = try first.cipher.seal(secret, keyID: "pk_a")
            let second = try ProviderKeyCipher.resolve(environment: ["SWITCHYARD_MASTER_KEY": ""], databasePath: database)
            #expect(!second.createdFile)
            #expect(try second.cipher.open(sealed, keyID: "pk_a") == secret)
            #expect(try String(contentsOfFile: path, encoding: .utf8) == text)

            // No temporary file is left behind.
            let folder = URL(fileURLWithPath: database).deletingLastPathComponent().path
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["switchyard.master-key"])
        }
    }

    @Test("a hex key file written by an operator is accepted")
    func operatorKeyFile() throws {
        try withFolder { _, database in
            let path = ProviderKeyCipher.filePath(forDatabase: database)
            #expect(FileManager.default.createFile(atPath: path, contents: Data((hexKey + "\n").utf8), attributes: [.posixPermissions: 0o400]))
            let resolved = try ProviderKeyCipher.resolve(environment: [:], databasePath: database)
            #expect(!resolved.createdFile)
            let fromEnvironment = try ProviderKeyCipher.resolve(environment: ["SWITCHYARD_MASTER_KEY": hexKey], databasePath: database)
            #expect(try fromEnvironment.cipher.open(try resolved.cipher.seal(secret, keyID: "pk_a"), keyID: "pk_a") == secret)
        }
    }

    @Test("a key file that group or others can read is refused")
    func openKeyFile() throws {
        try withFolder { _, database in
            let path = ProviderKeyCipher.filePath(forDatabase: database)
            _ = try ProviderKeyCipher.resolve(environment: [:], databasePath: database)
            let key = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            for mode in [0o644, 0o640, 0o604, 0o620] {
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
                let error = try cipherError { _ = try ProviderKeyCipher.resolve(environment: [:], databasePath: database) }
                #expect(error == .keyFileTooOpen)
                #expect(error.description.contains(path))
                #expect(error.description.contains("chmod 600"))
                #expect(!error.description.contains(key))
            }
            // The refused file is left as it was, not replaced.
            #expect(try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == key)
        }
    }

    @Test("a malformed key file is refused without echoing it")
    func malformedKeyFile() throws {
        try withFolder { _, database in
            let path = ProviderKeyCipher.filePath(forDatabase: database)
            let content = "abc123-not-a-key"
            #expect(FileManager.default.createFile(atPath: path, contents: Data(content.utf8), attributes: [.posixPermissions: 0o600]))
            let error = try cipherError { _ = try ProviderKeyCipher.resolve(environment: [:], databasePath: database) }
            #expect(error == .malformedKey)
            #expect(error.description.contains(path))
            #expect(!error.description.contains(content))
        }
    }

    // MARK: No secrets in messages

    @Test("no error description or cipher description contains the secret or the key")
    func noSecretsInDescriptions() throws {
        let keyBytes = (0..<32).map { UInt8(255 - $0) }
        let base64 = Data(keyBytes).base64EncodedString()
        let hex = keyBytes.map { String(format: "%02x", $0) }.joined()
        let cipher = ProviderKeyCipher(masterKey: SymmetricKey(data: keyBytes))
        let sealed = try cipher.seal(secret, keyID: "pk_a")
        var tampered = sealed
        tampered[tampered.count - 1] ^= 0xFF

        let errors = try [
            cipherError { _ = try cipher.open(sealed, keyID: "pk_b") },
            cipherError { _ = try self.cipher().open(sealed, keyID: "pk_a") },
            cipherError { _ = try cipher.open(tampered, keyID: "pk_a") },
            cipherError { _ = try cipher.open([], keyID: "pk_a") },
        ]
        for error in errors {
            for text in [error.description, String(describing: error), String(reflecting: error), "\(error)"] {
                #expect(!text.contains(secret))
                #expect(!text.contains(String(secret.suffix(12))))
                #expect(!text.contains(base64) && !text.lowercased().contains(hex))
            }
        }
        #expect(errors[0].description == "provider key pk_b cannot be decrypted: wrong master key or damaged data")
        #expect(errors[3] == .secretErased)

        var dumped = ""
        dump(cipher, to: &dumped)
        for text in [String(describing: cipher), String(reflecting: cipher), dumped] {
            #expect(!text.contains(base64) && !text.lowercased().contains(hex))
            #expect(!text.contains("255"))
        }
    }
}
