import Foundation
import GRDB

extension Directory {
    /// The provider keys (retired ones too, if asked) and the catalogue revision they are
    /// at, read in one transaction so the two agree.
    public func providerKeyCatalogue(includeRetired: Bool = false) async throws -> (revision: Int64, keys: [ProviderKeyRecord]) {
        try await pool.read { db in try Self.readCatalogue(includeRetired: includeRetired, in: db) }
    }

    /// `providerKeyCatalogue()` for start-up, before any request is served.
    public func providerKeyCatalogueBlocking() throws -> (revision: Int64, keys: [ProviderKeyRecord]) {
        try pool.read { db in try Self.readCatalogue(includeRetired: false, in: db) }
    }

    private static func readCatalogue(includeRetired: Bool, in db: GRDB.Database) throws -> (revision: Int64, keys: [ProviderKeyRecord]) {
        (try fetchProviderKeyRevision(db), try fetchProviderKeys(includeRetired: includeRetired, in: db))
    }
}
