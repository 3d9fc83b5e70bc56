import Foundation
import GRDB

/// One management write, as the audit log keeps it: when, in which tenant, who did it
/// (and as what), what they did to what, with the request's payload (secrets redacted by
/// the caller), its request id and where it came from. Entries are never changed or removed.
public struct AuditEntry: Sendable, Equatable, Identifiable {
    /// Who acted.
    public struct Actor: Sendable, Equatable {
        /// A user id, the admin token's id, or `switchyard` for the proxy's own changes.
        public var id: String
        /// `user`, `access_token`, `admin_token` or `system`.
        public var kind: String
        /// The actor's role when it acted; nil for the proxy itself.
        public var role: Role?

        public init(id: String, kind: String, role: Role?) {
            self.id = id
            self.kind = kind
            self.role = role
        }

        /// The proxy itself, e.g. disabling a provider key its provider rejected.
        public static let system = Actor(id: "switchyard", kind: "system", role: nil)
    }

    /// Increasing; the cursor of the log.
    public var id: Int64?
    public var at: Date
    public var tenantID: String?
    public var actor: Actor
    /// What was done, e.g. `tenant_created`, `key_revoked`, `login_failed`.
    public var action: String
    /// What it was done to: an id, or an email for a sign-in.
    public var target: String?
    /// The request's JSON payload with every secret redacted; nil when there was none.
    public var payload: String?
    public var requestID: String?
    public var sourceAddress: String?

    public init(
        id: Int64? = nil, at: Date, tenantID: String?, actor: Actor, action: String, target: String?,
        payload: String? = nil, requestID: String? = nil, sourceAddress: String? = nil
    ) {
        self.id = id
        self.at = at.wholeMilliseconds
        self.tenantID = tenantID
        self.actor = actor
        self.action = action
        self.target = target
        self.payload = payload
        self.requestID = requestID
        self.sourceAddress = sourceAddress
    }
}

extension AuditEntry: FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "audit_log"

    public enum Columns {
        public static let id = Column("id")
        public static let at = Column("at")
        public static let tenantID = Column("tenant_id")
        public static let actorID = Column("actor_id")
        public static let actorKind = Column("actor_kind")
        public static let actorRole = Column("actor_role")
        public static let action = Column("action")
        public static let target = Column("target")
        public static let payload = Column("payload")
        public static let requestID = Column("request_id")
        public static let sourceAddress = Column("source_address")
    }

    public init(row: Row) throws {
        self.init(
            id: row[Columns.id], at: Date(millisecondsSince1970: row[Columns.at]), tenantID: row[Columns.tenantID],
            actor: Actor(
                id: row[Columns.actorID], kind: row[Columns.actorKind],
                role: (row[Columns.actorRole] as String?).flatMap(Role.init(rawValue:))
            ),
            action: row[Columns.action], target: row[Columns.target], payload: row[Columns.payload],
            requestID: row[Columns.requestID], sourceAddress: row[Columns.sourceAddress]
        )
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container[Columns.id] = id
        container[Columns.at] = at.millisecondsSince1970
        container[Columns.tenantID] = tenantID
        container[Columns.actorID] = actor.id
        container[Columns.actorKind] = actor.kind
        container[Columns.actorRole] = actor.role?.rawValue
        container[Columns.action] = action
        container[Columns.target] = target
        container[Columns.payload] = payload
        container[Columns.requestID] = requestID
        container[Columns.sourceAddress] = sourceAddress
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }
}

/// Which audit entries to read: newest first, after `cursor` (an entry id) when given.
public struct AuditQuery: Sendable, Equatable {
    public var tenantID: String?
    public var action: String?
    public var actorID: String?
    public var from: Date?
    public var to: Date?
    /// Entries older than this id; nil for the newest.
    public var before: Int64?
    public var limit: Int

    public init(
        tenantID: String? = nil, action: String? = nil, actorID: String? = nil, from: Date? = nil, to: Date? = nil,
        before: Int64? = nil, limit: Int = 100
    ) {
        self.tenantID = tenantID
        self.action = action
        self.actorID = actorID
        self.from = from
        self.to = to
        self.before = before
        self.limit = limit
    }
}

extension Directory {
    /// Runs `change` and appends the audit entry `audit` makes of its result, in one
    /// transaction: the change is not kept without its entry, nor the entry without it.
    /// `change` may write any table of the database (Billing's budgets, say).
    public func recording<T: Sendable>(
        _ change: @escaping @Sendable (GRDB.Database) throws -> T,
        audit: @escaping @Sendable (T) -> AuditEntry?
    ) async throws -> T {
        try await pool.write { db in
            let result = try change(db)
            if var entry = audit(result) { try entry.insert(db) }
            return result
        }
    }

    /// Appends one audit entry on its own, for what changes nothing else (a failed sign-in).
    @discardableResult
    public func append(_ entry: AuditEntry) async throws -> AuditEntry {
        try await pool.write { db in
            var entry = entry
            try entry.insert(db)
            return entry
        }
    }

    /// Audit entries matching `query`, newest first, at most `query.limit`.
    public func auditEntries(_ query: AuditQuery) async throws -> [AuditEntry] {
        try await pool.read { db in
            var request = AuditEntry.order(AuditEntry.Columns.id.desc).limit(max(1, query.limit))
            if let tenantID = query.tenantID { request = request.filter(AuditEntry.Columns.tenantID == tenantID) }
            if let action = query.action { request = request.filter(AuditEntry.Columns.action == action) }
            if let actorID = query.actorID { request = request.filter(AuditEntry.Columns.actorID == actorID) }
            if let from = query.from { request = request.filter(AuditEntry.Columns.at >= from.millisecondsSince1970) }
            if let to = query.to { request = request.filter(AuditEntry.Columns.at < to.millisecondsSince1970) }
            if let before = query.before { request = request.filter(AuditEntry.Columns.id < before) }
            return try request.fetchAll(db)
        }
    }

    // MARK: Revocations

    /// Records that what replicas cache about `subject` must go: a key (`key`), every key
    /// of a user (`user`), or a tenant's contract (`tenant`). Part of the change's transaction.
    public static func recordRevocation(_ kind: String, subject: String, at now: Date, in db: GRDB.Database) throws {
        try db.execute(
            sql: "INSERT INTO revocations (kind, subject, at) VALUES (?, ?, ?)",
            arguments: [kind, subject, now.millisecondsSince1970]
        )
    }

    /// Revocations after `revision` (0 for all), oldest first, with the latest revision.
    public func revocations(after revision: Int64) async throws -> (revision: Int64, entries: [(kind: String, subject: String)]) {
        try await pool.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT id, kind, subject FROM revocations WHERE id > ? ORDER BY id LIMIT 10000", arguments: [revision]
            )
            let latest = rows.last.map { $0["id"] as Int64 } ?? revision
            return (latest, rows.map { ($0["kind"], $0["subject"]) })
        }
    }

    /// The latest revocation's revision, 0 when there is none: where a new replica starts.
    public func revocationRevision() async throws -> Int64 {
        try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(max(id), 0) FROM revocations") ?? 0 }
    }
}
