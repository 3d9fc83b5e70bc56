import Billing
import Crypto
import Foundation
import Directory
import Logging
import Pools
import Testing

@testable import Proxy

/// The catalogue against a real SQLite store in a temporary folder.
@Suite("ProviderKeyCatalogue")
struct ProviderKeyCatalogueTests {
    let directory: URL
    let store: Directory
    let cipher = ProviderKeyCipher(masterKey: SymmetricKey(size: .bits256))

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-catalogue-\(UUID().uuidString)")
        store = try SwitchyardDatabase(path: directory.appendingPathComponent("switchyard.sqlite").path).directory
    }

    private func catalogue(environment: [ProviderKeyCatalogue.Key] = [], cipher: ProviderKeyCipher? = nil) -> ProviderKeyCatalogue {
        ProviderKeyCatalogue(directory: store, cipher: cipher ?? self.cipher, environmentKeys: environment, logger: Logger(label: "test"))
    }

    @discardableResult
    private func add(
        _ secret: String, provider: String = "openai", weight: Int = 1, tiers: [String] = [], tenants: [String] = []
    ) async throws -> ProviderKeyRecord {
        let id = ProviderKeyRecord.newProviderKeyID()
        return try await store.createProviderKey(NewProviderKey(
            id: id, provider: provider, label: "label-\(secret.suffix(4))", weight: weight,
            tiers: tiers, tenants: tenants,
            sealedSecret: try cipher.seal(secret, keyID: id, provider: provider), lastFour: ProviderKeyCipher.lastFour(of: secret)
        ))
    }

    @Test("keys added to the store are served decrypted once the catalogue refreshes")
    func refreshLoadsNewKeys() async throws {
        let catalogue = catalogue(environment: [.init(environment: "OPENAI_API_KEY", provider: "openai", secret: "sk-env-00001111")])
        try catalogue.loadBlocking()
        #expect(catalogue.candidates(provider: "openai", tenantID: "t", tier: "gold").keys.map(\.id) == ["env:openai"])
        let added = try await add("sk-added-22223333", weight: 3)
        #expect(try await catalogue.refresh())
        #expect(try await catalogue.refresh() == false)
        let keys = catalogue.candidates(provider: "openai", tenantID: "t", tier: "gold").keys
        #expect(keys.map(\.id) == ["env:openai", added.id])
        #expect(keys.last?.secret == "sk-added-22223333")
        #expect(keys.last?.pooled == PooledKey(id: added.id, weight: 3))
        #expect(catalogue.hasActiveKeys(provider: "openai"))
        #expect(!catalogue.hasActiveKeys(provider: "anthropic"))
    }

    @Test("drained, disabled and retired keys take no new requests; drained ones stay known")
    func statesLeaveThePool() async throws {
        let catalogue = catalogue()
        let drained = try await add("sk-drained-aaaa1111")
        let disabled = try await add("sk-disabled-bbbb2222")
        let retired = try await add("sk-retired-cccc3333")
        let active = try await add("sk-active-dddd4444")
        _ = try await store.setProviderKeyState(id: drained.id, to: .draining, reason: "rotation")
        _ = try await store.setProviderKeyState(id: disabled.id, to: .disabled, reason: "401")
        _ = try await store.setProviderKeyState(id: retired.id, to: .retired, reason: nil)
        try await catalogue.reload()
        #expect(catalogue.candidates(provider: "openai", tenantID: "t", tier: "gold").keys.map(\.id) == [active.id])
        #expect(catalogue.key(id: drained.id) != nil)
        #expect(catalogue.key(id: retired.id) == nil)
    }

    @Test("a dedicated key serves only the tiers and tenants it names, all of them at once")
    func dedication() async throws {
        let catalogue = catalogue()
        let shared = try await add("sk-shared-00000000")
        let gold = try await add("sk-gold-11111111", tiers: ["gold"])
        let acme = try await add("sk-acme-22222222", tenants: ["ten_acme"])
        let both = try await add("sk-both-33333333", tiers: ["gold"], tenants: ["ten_acme"])
        try await catalogue.reload()
        func ids(_ tenant: String, _ tier: String) -> Set<String> {
            Set(catalogue.candidates(provider: "openai", tenantID: tenant, tier: tier).keys.map(\.id))
        }
        #expect(ids("ten_other", "silver") == [shared.id])
        #expect(ids("ten_other", "gold") == [shared.id, gold.id])
        #expect(ids("ten_acme", "silver") == [shared.id, acme.id])
        #expect(ids("ten_acme", "gold") == [shared.id, gold.id, acme.id, both.id])
    }

    @Test("a key that does not decrypt is left out, and the others still serve")
    func undecryptableKeysAreSkipped() async throws {
        let good = try await add("sk-good-44445555")
        let id = ProviderKeyRecord.newProviderKeyID()
        let stranger = ProviderKeyCipher(masterKey: SymmetricKey(size: .bits256))
        _ = try await store.createProviderKey(NewProviderKey(
            id: id, provider: "openai", label: "sealed elsewhere",
            sealedSecret: try stranger.seal("sk-other-66667777", keyID: id, provider: "openai"), lastFour: "7777"
        ))
        // A row moved to another provider no longer opens either.
        let moved = try await add("sk-moved-88889999", provider: "anthropic")
        let catalogue = catalogue()
        try await catalogue.reload()
        #expect(catalogue.candidates(provider: "openai", tenantID: "t", tier: "gold").keys.map(\.id) == [good.id])
        #expect(catalogue.key(id: id) == nil)
        #expect(catalogue.key(id: moved.id)?.secret == "sk-moved-88889999")
    }

    @Test("printing a key never shows its secret")
    func descriptionsHideTheSecret() {
        let key = ProviderKeyCatalogue.Key(environment: "OPENAI_API_KEY", provider: "openai", secret: "sk-very-secret-9876")
        for text in [String(describing: key), String(reflecting: key), "\(key)", String(describing: Mirror(reflecting: key).children.map(\.value))] {
            #expect(!text.contains("sk-very-secret"))
        }
        #expect(String(describing: key).contains("9876"))
    }
}
