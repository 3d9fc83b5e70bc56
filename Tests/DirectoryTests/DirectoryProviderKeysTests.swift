import Foundation
import GRDB
import Testing

@testable import Directory

@Suite("Directory provider keys")
struct DirectoryProviderKeysTests {
    /// As long as a sealed project key (~190 bytes), so erasing it leaves a gap bigger than the row's new size.
    private let sealedA: [UInt8] = Array(repeating: 0xA5, count: 200)
    private let sealedB: [UInt8] = (0..<40).map { UInt8($0) }

    private func newKey(
        provider: String = "openai",
        label: String = "primary",
        sealed: [UInt8],
        tiers: [String] = [],
        tenants: [String] = []
    ) -> NewProviderKey {
        NewProviderKey(
            id: ProviderKeyRecord.newProviderKeyID(),
            provider: provider,
            label: label,
            weight: 3,
            requestsPerMinute: 500,
            tokensPerMinute: nil,
            tiers: tiers,
            tenants: tenants,
            sealedSecret: sealed,
            lastFour: "wxyz"
        )
    }

    // MARK: Catalogue

    @Test("new provider key ids are pk_ and random")
    func ids() {
        let first = ProviderKeyRecord.newProviderKeyID()
        let second = ProviderKeyRecord.newProviderKeyID()
        #expect(first.hasPrefix("pk_"))
        #expect(first.count == 23)
        #expect(first != second)
        #expect(first.dropFirst(3).allSatisfy { $0.isLetter || $0.isNumber })
    }

    @Test("creates, lists and gets provider keys")
    func createListGet() async throws {
        try await withDirectory { directory, _ async throws in
            #expect(try await directory.providerKeys().isEmpty)
            let created = date("2026-01-02T00:00:00.125Z")
            let new = newKey(sealed: sealedA, tiers: ["enterprise", "professional"], tenants: ["ten_a"])
            let openai = try await directory.createProviderKey(new, now: created)

            #expect(openai.id == new.id)
            #expect(openai.provider == "openai")
            #expect(openai.label == "primary")
            #expect(openai.weight == 3)
            #expect(openai.requestsPerMinute == 500)
            #expect(openai.tokensPerMinute == nil)
            #expect(openai.tiers == ["enterprise", "professional"])
            #expect(openai.tenants == ["ten_a"])
            #expect(openai.sealedSecret == sealedA)
            #expect(openai.lastFour == "wxyz")
            #expect(openai.state == .active)
            #expect(openai.stateReason == nil)
            #expect(openai.createdAt == created)
            #expect(openai.updatedAt == created)
            #expect(openai.revision == 1)

            let anthropic = try await directory.createProviderKey(
                newKey(provider: "anthropic", sealed: sealedB), now: date("2026-01-03T00:00:00Z")
            )
            let openaiSecond = try await directory.createProviderKey(
                newKey(label: "secondary", sealed: sealedB), now: date("2026-01-01T00:00:00Z")
            )
            #expect(anthropic.tiers.isEmpty && anthropic.tenants.isEmpty)

            // By provider, then oldest first.
            #expect(try await directory.providerKeys() == [anthropic, openaiSecond, openai])
            #expect(try await directory.providerKey(id: openai.id) == openai)
            #expect(try await directory.providerKey(id: "pk_missing") == nil)
        }
    }

    @Test("the key createProviderKey returns equals the one stored")
    func createdEqualsStored() async throws {
        try await withDirectory { directory, _ async throws in
            let created = try await directory.createProviderKey(
                newKey(sealed: sealedA), now: Date(timeIntervalSince1970: 1_772_000_000.123_456)
            )
            #expect(try await directory.providerKey(id: created.id) == created)
        }
    }

    @Test("two keys cannot share an id")
    func duplicateID() async throws {
        try await withDirectory { directory, _ async throws in
            let new = newKey(sealed: sealedA)
            _ = try await directory.createProviderKey(new)
            await #expect(throws: (any Error).self) {
                try await directory.createProviderKey(new)
            }
            #expect(try await directory.providerKeys().count == 1)
            #expect(try await directory.providerKeyRevision() == 1)
        }
    }

    // MARK: States

    @Test("moves a key through drain, disable and back to active")
    func stateChanges() async throws {
        try await withDirectory { directory, _ async throws in
            let key = try await directory.createProviderKey(newKey(sealed: sealedA), now: date("2026-01-01T00:00:00Z"))

            let draining = try #require(
                try await directory.setProviderKeyState(id: key.id, to: .draining, reason: "rotation", now: date("2026-01-02T00:00:00Z"))
            )
            #expect(draining.state == .draining)
            #expect(draining.stateReason == "rotation")
            #expect(draining.updatedAt == date("2026-01-02T00:00:00Z"))
            #expect(draining.createdAt == key.createdAt)
            #expect(draining.sealedSecret == sealedA)
            #expect(try await directory.providerKey(id: key.id) == draining)

            let disabled = try #require(try await directory.setProviderKeyState(id: key.id, to: .disabled, reason: "401 from upstream"))
            #expect(disabled.state == .disabled)
            #expect(disabled.stateReason == "401 from upstream")

            let active = try #require(try await directory.setProviderKeyState(id: key.id, to: .active, reason: nil))
            #expect(active.state == .active)
            #expect(active.stateReason == nil)
            #expect(active.sealedSecret == sealedA)

            #expect(try await directory.setProviderKeyState(id: "pk_missing", to: .disabled, reason: nil) == nil)
        }
    }

    @Test("retiring erases the secret, and a retired key cannot change state")
    func retire() async throws {
        try await withDirectory { directory, folder async throws in
            // As in SQLite builds that keep deleted bytes by default, so the check below means something.
            try await directory.pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA secure_delete = OFF") }
            let key = try await directory.createProviderKey(newKey(sealed: sealedA))
            let kept = try await directory.createProviderKey(newKey(label: "kept", sealed: sealedB))

            let retired = try #require(try await directory.setProviderKeyState(id: key.id, to: .retired, reason: "leaked"))
            #expect(retired.state == .retired)
            #expect(retired.stateReason == "leaked")
            #expect(retired.sealedSecret.isEmpty)
            #expect(retired.lastFour == "wxyz")
            #expect(try await directory.providerKey(id: key.id) == retired)

            for state in ProviderKeyRecord.State.allCases {
                await #expect(throws: DirectoryError.retired) {
                    try await directory.setProviderKeyState(id: key.id, to: state, reason: "again")
                }
            }
            #expect(try await directory.providerKey(id: key.id) == retired)

            // Listed only on request.
            #expect(try await directory.providerKeys() == [kept])
            #expect(try await directory.providerKeys(includeRetired: true).map(\.id) == [key.id, kept.id])

            // The blob is zero-length, not merely hidden: nothing of the secret is on disk.
            try await directory.pool.writeWithoutTransaction { _ = try $0.checkpoint(.truncate) }
            let file = try Data(contentsOf: URL(fileURLWithPath: folder.databasePath))
            #expect(file.range(of: Data(sealedA.prefix(16))) == nil)
            #expect(file.range(of: Data(sealedB)) != nil)
            // The connection's own setting is restored.
            #expect(try await directory.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA secure_delete") } == 0)
        }
    }

    // MARK: Revision

    @Test("every write raises the revision, seen by a second ledger on the same file")
    func revision() async throws {
        try await withDirectory { directory, folder async throws in
            let other = try openDirectory(folder.databasePath)
            #expect(try await directory.providerKeyRevision() == 0)
            #expect(try await other.providerKeyRevision() == 0)

            let first = try await directory.createProviderKey(newKey(sealed: sealedA))
            #expect(first.revision == 1)
            #expect(try await other.providerKeyRevision() == 1)

            let second = try await other.createProviderKey(newKey(provider: "gemini", sealed: sealedB))
            #expect(second.revision == 2)
            #expect(try await directory.providerKeyRevision() == 2)

            let drained = try #require(try await directory.setProviderKeyState(id: first.id, to: .draining, reason: nil))
            #expect(drained.revision == 3)
            #expect(try await other.providerKeyRevision() == 3)
            #expect(try await other.providerKey(id: first.id) == drained)

            let retired = try #require(try await other.setProviderKeyState(id: second.id, to: .retired, reason: nil))
            #expect(retired.revision == 4)
            #expect(try await directory.providerKeyRevision() == 4)

            // A refused change and an unknown id change nothing.
            await #expect(throws: DirectoryError.retired) {
                try await directory.setProviderKeyState(id: second.id, to: .active, reason: nil)
            }
            _ = try await directory.setProviderKeyState(id: "pk_missing", to: .active, reason: nil)
            #expect(try await other.providerKeyRevision() == 4)
            #expect(try await directory.providerKeys(includeRetired: true).map(\.revision).sorted() == [3, 4])
        }
    }
}
