import Billing
import Directory
import Foundation
import Logging
import Pools
import Synchronization

/// The provider keys Switchyard may use, decrypted in memory: the ones `providers.json`
/// names by environment variable and the ones operators added through the management
/// API. Requests read one consistent snapshot; the snapshot is replaced whole when the
/// directory's catalogue changes (through this replica at once, through another within the
/// poll interval of `ProviderKeyCatalogueService`).
public final class ProviderKeyCatalogue: Sendable {
    /// One usable provider key. Its descriptions leave the secret out, so printing or
    /// logging a key cannot leak it.
    public struct Key: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        public enum Source: Sendable, Equatable {
            /// Named in `providers.json` by this environment variable.
            case environment(variable: String)
            /// Added through the management API and kept, encrypted, in the directory.
            case catalogue
        }

        public var id: String
        public var provider: String
        public var label: String
        /// Never logged, never returned: it goes only into the provider's request.
        public var secret: String
        public var lastFour: String
        public var pooled: PooledKey
        /// Tiers and tenants the key is dedicated to; empty sets mean everyone.
        public var tiers: Set<String>
        public var tenants: Set<String>
        public var source: Source

        /// The key named by `variable` in `providers.json`: id `env:<provider>`, weight 1,
        /// no limits of its own, serving everyone.
        init(environment variable: String, provider: String, secret: String) {
            self.id = "env:" + provider
            self.provider = provider
            self.label = "$" + variable
            self.secret = secret
            self.lastFour = ProviderKeyCipher.lastFour(of: secret)
            self.pooled = PooledKey(id: id)
            self.tiers = []
            self.tenants = []
            self.source = .environment(variable: variable)
        }

        init(
            id: String, provider: String, label: String, secret: String, lastFour: String, pooled: PooledKey,
            tiers: Set<String>, tenants: Set<String>, source: Source
        ) {
            self.id = id
            self.provider = provider
            self.label = label
            self.secret = secret
            self.lastFour = lastFour
            self.pooled = pooled
            self.tiers = tiers
            self.tenants = tenants
            self.source = source
        }

        public var description: String { "ProviderKey(\(id), \(provider), …\(lastFour))" }
        public var debugDescription: String { description }
        public var customMirror: Mirror {
            Mirror(self, children: ["id": id, "provider": provider, "label": label, "lastFour": lastFour], displayStyle: .struct)
        }

        /// Whether the key may serve this tenant: every dedication it has must match.
        func serves(tenantID: String, tier: String) -> Bool {
            (tiers.isEmpty || tiers.contains(tier)) && (tenants.isEmpty || tenants.contains(tenantID))
        }
    }

    /// One provider's keys that take new requests, in catalogue order, with what a
    /// request needs ready-made: their pool view, and whether any is dedicated (else
    /// every tenant gets them all, unfiltered).
    private struct ActiveKeys: Sendable {
        var keys: [Key] = []
        var pooled: [PooledKey] = []
        var anyDedicated = false

        mutating func append(_ key: Key) {
            keys.append(key)
            pooled.append(key.pooled)
            anyDedicated = anyDedicated || !key.tiers.isEmpty || !key.tenants.isEmpty
        }
    }

    private struct Snapshot: Sendable {
        var revision: Int64 = -1
        var active: [String: ActiveKeys] = [:]
        /// Keys by id, whatever their state.
        var byID: [String: Key] = [:]
        /// Per provider, the ids of the keys disabled (their credentials were rejected,
        /// or an operator disabled them) until someone enables them again.
        var disabled: [String: [String]] = [:]

        init(revision: Int64, keys: [(key: Key, state: ProviderKeyRecord.State)]) {
            self.revision = revision
            for (key, state) in keys {
                byID[key.id] = key
                switch state {
                case .active: self.active[key.provider, default: ActiveKeys()].append(key)
                case .disabled: self.disabled[key.provider, default: []].append(key.id)
                case .draining, .retired: break
                }
            }
        }
    }

    private let directory: Directory
    private let cipher: ProviderKeyCipher
    /// The keys named by environment variables, always active.
    public let environmentKeys: [Key]
    private let logger: Logger
    private let snapshot: Mutex<Snapshot>
    /// Keys already reported as undecryptable, so each is logged once.
    private let unreadable = Mutex<Set<String>>([])

    /// - Parameter environmentKeys: keys from environment variables, always active.
    public init(directory: Directory, cipher: ProviderKeyCipher, environmentKeys: [Key], logger: Logger) {
        self.directory = directory
        self.cipher = cipher
        self.environmentKeys = environmentKeys
        self.logger = logger
        self.snapshot = Mutex(Snapshot(revision: -1, keys: environmentKeys.map { ($0, .active) }))
    }

    // MARK: Reading (request path)

    /// The active keys of `provider` that serve this tenant, in catalogue order, and the
    /// same keys as the key pool sees them.
    public func candidates(provider: String, tenantID: String, tier: String) -> (keys: [Key], pooled: [PooledKey]) {
        guard let available = snapshot.withLock({ $0.active[provider] }) else { return ([], []) }
        guard available.anyDedicated else { return (available.keys, available.pooled) }
        let keys = available.keys.filter { $0.serves(tenantID: tenantID, tier: tier) }
        return (keys, keys.map(\.pooled))
    }

    /// Whether `provider` has any active key at all.
    public func hasActiveKeys(provider: String) -> Bool {
        snapshot.withLock { !($0.active[provider]?.keys.isEmpty ?? true) }
    }

    /// The ids of `provider`'s keys that take new requests, in catalogue order, and of those
    /// disabled until enabled again (draining and retired keys are in neither).
    public func keyIDs(provider: String) -> (active: [String], disabled: [String]) {
        snapshot.withLock { ($0.active[provider]?.keys.map(\.id) ?? [], $0.disabled[provider] ?? []) }
    }

    public func key(id: String) -> Key? {
        snapshot.withLock { $0.byID[id] }
    }

    public var revision: Int64 { snapshot.withLock { $0.revision } }

    // MARK: Loading

    /// Reads the directory's catalogue if its revision moved past the one loaded.
    /// - Returns: whether the snapshot was replaced.
    @discardableResult
    public func refresh() async throws -> Bool {
        let latest = try await directory.providerKeyRevision()
        guard latest != revision else { return false }
        try await reload()
        return true
    }

    /// Reads the whole catalogue and replaces the snapshot.
    public func reload() async throws {
        let (revision, records) = try await directory.providerKeyCatalogue()
        install(records, revision: revision)
    }

    /// Reads the catalogue at start, before any request is served.
    public func loadBlocking() throws {
        let (revision, records) = try directory.providerKeyCatalogueBlocking()
        install(records, revision: revision)
    }

    /// Replaces the snapshot with `records` (decrypted) plus the environment's keys.
    func install(_ records: [ProviderKeyRecord], revision: Int64) {
        let keys = environmentKeys.map { ($0, ProviderKeyRecord.State.active) }
            + records.compactMap { record in decrypt(record).map { ($0, record.state) } }
        let next = Snapshot(revision: revision, keys: keys)
        snapshot.withLock { current in
            // Two reloads may race; the later revision wins.
            if next.revision >= current.revision { current = next }
        }
    }

    private func decrypt(_ record: ProviderKeyRecord) -> Key? {
        guard !record.sealedSecret.isEmpty else { return nil }
        do {
            let secret = try cipher.open(record.sealedSecret, keyID: record.id, provider: record.provider)
            return Key(
                id: record.id,
                provider: record.provider,
                label: record.label,
                secret: secret,
                lastFour: record.lastFour,
                pooled: PooledKey(
                    id: record.id, weight: record.weight,
                    requestsPerMinute: record.requestsPerMinute, tokensPerMinute: record.tokensPerMinute
                ),
                tiers: Set(record.tiers),
                tenants: Set(record.tenants),
                source: .catalogue
            )
        } catch {
            let first = unreadable.withLock { $0.insert(record.id).inserted }
            if first {
                logger.error(
                    "provider key cannot be decrypted; it is left out of its pool",
                    metadata: ["key": "\(record.id)", "provider": "\(record.provider)", "error": "\(error)"]
                )
            }
            return nil
        }
    }
}
