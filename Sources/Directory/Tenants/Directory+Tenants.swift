import Foundation
import GRDB

extension Directory {
    /// Creates a tenant.
    /// - Throws: `DirectoryError` `.duplicateName` when a tenant has that name.
    public func createTenant(name: String, tier: String, now: Date = Date()) async throws -> Tenant {
        try await pool.write { db in try Self.createTenant(name: name, tier: tier, now: now, in: db) }
    }

    /// `createTenant(name:tier:now:)` within the caller's transaction.
    public static func createTenant(name: String, tier: String, now: Date, in db: GRDB.Database) throws -> Tenant {
        let tenant = Tenant(id: Identifier.make(prefix: "ten"), name: name, tier: tier, createdAt: now.wholeMilliseconds)
        do {
            try tenant.insert(db)
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw DirectoryError.duplicateName
        }
        return tenant
    }

    /// Every tenant, oldest first.
    public func tenants() async throws -> [Tenant] {
        try await pool.read { db in
            try Tenant.order(Tenant.Columns.createdAt, Tenant.Columns.id).fetchAll(db)
        }
    }

    public func tenant(id: String) async throws -> Tenant? {
        try await pool.read { db in try Tenant.fetchOne(db, key: id) }
    }

    /// Replaces a tenant's limit overrides (an empty value restores the tier's limits).
    /// Returns the updated tenant, or nil for an unknown tenant.
    public func setTenantLimits(id: String, _ overrides: TenantLimitOverrides) async throws -> Tenant? {
        try await updateTenant(id: id) { $0.limitOverrides = overrides }
    }

    /// Replaces a tenant's pinning (empty: none). Returns the updated tenant, or nil for
    /// an unknown tenant.
    public func setTenantPinning(id: String, _ pinning: [String: String]) async throws -> Tenant? {
        try await updateTenant(id: id) { $0.pinning = pinning }
    }

    private func updateTenant(id: String, _ change: @escaping @Sendable (inout Tenant) -> Void) async throws -> Tenant? {
        try await pool.write { db in try Self.updateTenant(id: id, in: db, change) }
    }

    /// Changes a tenant within the caller's transaction, and tells every replica to forget
    /// the contract it caches for it. Returns the updated tenant, or nil for an unknown one.
    public static func updateTenant(id: String, in db: GRDB.Database, _ change: (inout Tenant) -> Void) throws -> Tenant? {
        guard var tenant = try Tenant.fetchOne(db, key: id) else { return nil }
        if try tenant.updateChanges(db, modify: change) {
            try recordRevocation("tenant", subject: id, at: Date(), in: db)
        }
        return tenant
    }
}
