import Billing
import Directory
import Foundation
import Pools
import Providers
import Synchronization

/// Who sent a request: the tenant, the key it used, and the contract it is served under.
public struct AuthenticatedTenant: Sendable, Equatable {
    public var tenantID: String
    public var tenantName: String
    public var keyID: String
    /// The user who owns the key; nil for keys made before users existed.
    public var userID: String? = nil
    /// The tenant's tier with its own overrides, resolved when the key was looked up.
    public var contract: Contract
    /// The tenant's budget, then the key's: the ones set, as they stood at the lookup.
    public var budgets: [Budget] = []

    /// The tier's name.
    public var tier: String { contract.tier }
}

/// Turns a bearer tenant key into its tenant: hash, look up (cached), check.
///
/// Positive lookups are cached for `cacheTTL`; a revocation through this process's
/// admin API takes effect at once, one through another replica when `RevocationFollower`
/// next polls the directory (every second).
public final class TenantAuthenticator: Sendable {
    private struct CacheEntry {
        var record: TenantKeyRecord?
        var tenant: AuthenticatedTenant?
        var fetchedAt: ContinuousClock.Instant
    }

    private let directory: Directory
    private let ledger: Ledger
    /// Resolves a tenant's contract from its record.
    private let contract: @Sendable (Tenant) -> Contract
    private let cacheTTL: Duration
    private let negativeTTL: Duration
    private let maximumEntries: Int
    private let cache = Mutex<[[UInt8]: CacheEntry]>([:])
    /// Moves on at every invalidation: a lookup that read the directory before one stores
    /// nothing, so it cannot put back what a revocation just dropped.
    private let generation = Atomic<UInt64>(0)

    public init(
        directory: Directory,
        ledger: Ledger,
        contract: @escaping @Sendable (Tenant) -> Contract,
        cacheTTL: Duration = .seconds(30),
        negativeTTL: Duration = .seconds(5),
        maximumEntries: Int = 100_000
    ) {
        self.directory = directory
        self.ledger = ledger
        self.contract = contract
        self.cacheTTL = cacheTTL
        self.negativeTTL = negativeTTL
        self.maximumEntries = maximumEntries
    }

    /// Authenticates the value of an `Authorization` header.
    ///
    /// - Throws: `OpenAIError` 401 `invalid_api_key` for a missing, malformed, unknown,
    ///   revoked or expired key.
    public func authenticate(authorization: String?, now: Date = Date()) async throws -> AuthenticatedTenant {
        // The cached answer needs no suspension; only a miss pays for an async frame
        // large enough for the directory lookup (every open connection keeps the largest
        // frame its task has used).
        switch try cachedLookup(authorization: authorization, now: now) {
        case .found(let tenant): return tenant
        case .missing(let hash): return try await lookUp(hash: hash, now: now)
        }
    }

    /// The tenant of a key whose lookup is cached, without suspending: nil when the
    /// directory must be read (`authenticate` does).
    ///
    /// - Throws: `OpenAIError` 401 as `authenticate` does, for what needs no lookup to refuse.
    public func cachedTenant(authorization: String?, now: Date = Date()) throws(OpenAIError) -> AuthenticatedTenant? {
        switch try cachedLookup(authorization: authorization, now: now) {
        case .found(let tenant): tenant
        case .missing: nil
        }
    }

    private enum CachedLookup {
        case found(AuthenticatedTenant)
        case missing(hash: [UInt8])
    }

    @inline(never)
    private func cachedLookup(authorization: String?, now: Date) throws(OpenAIError) -> CachedLookup {
        guard let authorization, !authorization.isEmpty else { throw OpenAIError.missingAPIKey }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            throw OpenAIError.invalidAPIKey
        }
        let secret = authorization.dropFirst(7).drop { $0 == " " }
        guard TenantKeySecret.isWellFormed(secret) else { throw OpenAIError.invalidAPIKey }
        let hash = TenantKeySecret.hash(secret)
        let clock = ContinuousClock.now
        let cached = cache.withLock { cache -> CacheEntry? in
            guard let entry = cache[hash] else { return nil }
            let ttl = entry.record == nil ? negativeTTL : cacheTTL
            return clock - entry.fetchedAt < ttl ? entry : nil
        }
        guard let cached else { return .missing(hash: hash) }
        return .found(try Self.check(cached, hash: hash, now: now))
    }

    @inline(never)
    private func lookUp(hash: [UInt8], now: Date) async throws -> AuthenticatedTenant {
        // A revocation that lands during the read makes it read again (twice at most);
        // what is returned then reflects it.
        for _ in 0..<2 {
            let started = generation.load(ordering: .acquiring)
            let entry = try await read(hash: hash)
            let stored = cache.withLock { cache -> Bool in
                guard generation.load(ordering: .acquiring) == started else { return false }
                if cache.count >= maximumEntries { cache.removeAll(keepingCapacity: true) }
                cache[hash] = entry
                return true
            }
            if stored { return try Self.check(entry, hash: hash, now: now) }
        }
        return try Self.check(try await read(hash: hash), hash: hash, now: now)
    }

    private func read(hash: [UInt8]) async throws -> CacheEntry {
        let found = try await directory.lookUpKey(secretHash: hash)
        var budgets: [Budget] = []
        if let found {
            let set = try await ledger.budgets(tenantID: found.tenant.id, keyID: found.key.id)
            budgets = [set.tenant, set.key].compactMap { $0 }
        }
        let entry = CacheEntry(
            record: found?.key,
            tenant: found.map {
                AuthenticatedTenant(
                    tenantID: $0.tenant.id, tenantName: $0.tenant.name, keyID: $0.key.id, userID: $0.key.userID,
                    contract: contract($0.tenant), budgets: budgets
                )
            },
            fetchedAt: .now
        )
        return entry
    }

    private static func check(_ entry: CacheEntry, hash: [UInt8], now: Date) throws(OpenAIError) -> AuthenticatedTenant {
        guard let record = entry.record, let tenant = entry.tenant,
              constantTimeEqual(record.secretHash, hash),
              record.isUsable(at: now)
        else { throw OpenAIError.invalidAPIKey }
        return tenant
    }

    /// Forgets what is cached about a tenant's keys, after its contract changed.
    public func invalidate(tenantID: String) {
        cache.withLock { cache in
            generation.add(1, ordering: .releasing)
            for (hash, entry) in cache where entry.record?.tenantID == tenantID {
                cache[hash] = nil
            }
        }
    }

    /// Forgets what is cached about a user's keys, after the user was removed.
    public func invalidate(userID: String) {
        cache.withLock { cache in
            generation.add(1, ordering: .releasing)
            for (hash, entry) in cache where entry.record?.userID == userID {
                cache[hash] = nil
            }
        }
    }

    /// Forgets what is cached about a key, after it was revoked.
    public func invalidate(keyID: String) {
        cache.withLock { cache in
            generation.add(1, ordering: .releasing)
            for (hash, entry) in cache where entry.record?.id == keyID {
                cache[hash] = nil
            }
        }
    }
}
