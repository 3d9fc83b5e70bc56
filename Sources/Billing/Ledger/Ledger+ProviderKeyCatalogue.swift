import Foundation
import GRDB

extension Ledger {
    /// The provider keys in service (every state but retired) and the catalogue revision
    /// they are at, read in one transaction so the two agree.
    public func providerKeyCatalogue() async throws -> (revision: Int64, keys: [ProviderKeyRecord]) {
        try await pool.read(Self.readCatalogue)
    }

    /// `providerKeyCatalogue()` for start-up, before any request is served.
    public func providerKeyCatalogueBlocking() throws -> (revision: Int64, keys: [ProviderKeyRecord]) {
        try pool.read(Self.readCatalogue)
    }

    private static func readCatalogue(_ db: GRDB.Database) throws -> (revision: Int64, keys: [ProviderKeyRecord]) {
        let revision = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(revision), 0) FROM provider_keys") ?? 0
        let keys = try Row.fetchAll(
            db,
            sql: "SELECT * FROM provider_keys WHERE state != ? ORDER BY provider, created_at, id",
            arguments: [ProviderKeyRecord.State.retired.rawValue]
        ).map(providerKey(from:))
        return (revision, keys)
    }
}
