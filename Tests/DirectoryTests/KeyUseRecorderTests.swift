import Foundation
import Logging
import Testing

@testable import Directory

@Suite("Key use recorder")
struct KeyUseRecorderTests {
    private let logger = Logger(label: "test")

    @Test("a flush records when keys were last used")
    func keyUses() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let key = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: [1, 2, 3])
            let recorder = KeyUseRecorder(directory: directory, logger: logger)
            let used = date("2026-03-01T10:00:00.5Z")
            recorder.record(keyID: key.id, at: used)
            #expect(try await directory.key(id: key.id)?.lastUsedAt == nil)
            await recorder.flush()
            #expect(try await directory.key(id: key.id)?.lastUsedAt == used)
        }
    }

    @Test("the latest of several uses of a key in one batch wins, whatever their order")
    func keyUsesOutOfOrder() async throws {
        try await withDirectory { directory, _ async throws in
            let tenant = try await directory.createTenant(name: "Acme", tier: "enterprise")
            let key = try await directory.createKey(tenantID: tenant.id, name: "a", prefix: "sk-sy-a", secretHash: [1, 2, 3])
            let recorder = KeyUseRecorder(directory: directory, logger: logger)
            let later = date("2026-03-01T10:00:02Z")
            recorder.record(keyID: key.id, at: later)
            recorder.record(keyID: key.id, at: date("2026-03-01T10:00:01Z"))
            await recorder.flush()
            #expect(try await directory.key(id: key.id)?.lastUsedAt == later)
        }
    }
}
