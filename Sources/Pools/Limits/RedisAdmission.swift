import Logging
import Synchronization

/// Tenant rate limits kept in Redis, so that every proxy replica pointed at the same Redis
/// holds a tenant to the same limits.
///
/// Each admission, each settlement and each budget read is one Lua script
/// (``RedisAdmission/admitScript``, ``RedisAdmission/settleScript``,
/// ``RedisAdmission/budgetStatusScript``) that runs `AdmissionState`'s arithmetic
/// atomically on the tenant's keys, with Redis's own clock: the decisions, refusals,
/// retry-afters, header values and budget amounts are those of one `InProcessLimiter`
/// serving every replica.
///
/// Settling never blocks: ``settle(_:actualTokens:actualMicros:)`` queues the settlement
/// (a bounded queue; when it is full, settlements are dropped and counted, and the
/// reservations they would have ended expire after `reservationTTL`). ``run()`` sends the
/// queue in pipelined batches and must be running for settlements to reach Redis; Pools
/// cannot depend on ServiceLifecycle, so the proxy wraps it in its `Service`.
/// ``shutdown()`` sends what is left. Shut down the admission before its `RedisClient`.
///
/// Reservation ids are a random 64-bit starting point per instance plus a counter, so
/// replicas draw from unrelated ranges; the admit script refuses an id that is already open
/// for the tenant and the admission draws the next one, so two open reservations of a
/// tenant never share an id.
public final class RedisAdmission: TenantAdmission, Sendable {
    /// The Redis keys of one tenant. They share the hash tag `{tenant:<id>}`, so they live in
    /// one Redis Cluster slot and one script may use them all.
    public struct Keys: Sendable, Hashable {
        /// A hash: each bucket's level (`requests.units`, `tokens.units`, in 1/60,000
        /// token), last refill (`.at`, Redis milliseconds) and limit (`.limit`).
        public let buckets: String
        /// A sorted set: open reservation id -> expiry in Redis milliseconds.
        public let inflight: String
        /// A hash: open reservation id -> reserved tokens, and the reserved micros and budget
        /// periods when it reserved in budgets (`"<tokens> <micros> <scope>|<periodStart> …"`).
        public let reserved: String
        /// A hash: each budget period's used and reserved tokens and micros, under
        /// `<scope>|<periodStart>|ut`, `|um`, `|rt` and `|rm`; a period without `ut` has no
        /// state. It lives at least until the last period it holds resets, plus a margin.
        public let budgets: String

        public init(tenantID: String) {
            let prefix = "sy:{tenant:\(tenantID)}"
            buckets = prefix + ":buckets"
            inflight = prefix + ":inflight"
            reserved = prefix + ":reserved"
            budgets = prefix + ":budgets"
        }

        var all: [String] { [buckets, inflight, reserved, budgets] }
    }

    /// Settlements sent, settlements Redis had nothing for (already settled or expired),
    /// settlements dropped (queue full, or Redis unreachable at shutdown), and waiting now.
    public struct Statistics: Sendable, Hashable {
        public var settled: Int
        public var unmatched: Int
        public var dropped: Int
        public var pending: Int
    }

    /// The largest requests or tokens per minute the scripts take exactly; larger limits
    /// are treated as this one. Lua's doubles hold integers exactly below 2^53, and a level
    /// needs up to three full buckets of 60,000 units per token.
    public static let largestLimit = 50_000_000_000
    /// Token counts, costs in micros, budget limits and seeds sent to the scripts are capped
    /// here: far above `largestLimit`, so a capped count is refused or clamped exactly as
    /// the true one would be.
    static let largestCount = 1 << 52
    /// How long the keys outlive the moment the tenant's state becomes a fresh tenant's.
    static let keyMargin: Duration = .seconds(120)

    public let client: RedisClient
    /// How long an unsettled reservation holds its concurrency slot; whole milliseconds.
    public let reservationTTL: Duration
    /// The wait suggested when all concurrency slots are taken; whole milliseconds.
    public let concurrencyRetryAfter: Duration
    /// The most settlements queued while Redis is slow or unreachable.
    public let settlementCapacity: Int
    /// The most settlements sent in one pipeline.
    public let settlementBatchSize: Int

    /// Queues settlements and sends them in batches.
    let sender: RedisBatchSender<PendingSettlement>
    let counters: Counters
    /// The last reservation id drawn.
    let nextID: Atomic<UInt64>

    /// - Parameters:
    ///   - client: The Redis every replica shares. Shut it down after this admission.
    ///   - reservationTTL: How long an unsettled reservation holds its concurrency slot;
    ///     rounded up to whole milliseconds.
    ///   - concurrencyRetryAfter: The wait suggested when all concurrency slots are taken;
    ///     rounded up to whole milliseconds.
    ///   - settlementCapacity: The most settlements queued; at least 1.
    ///   - settlementBatchSize: The most settlements sent in one round trip; at least 1.
    ///   - logger: Where failures to settle are reported.
    public init(
        client: RedisClient,
        reservationTTL: Duration = .seconds(600),
        concurrencyRetryAfter: Duration = .seconds(1),
        settlementCapacity: Int = 10_000,
        settlementBatchSize: Int = 64,
        logger: Logger = Logger(label: "switchyard.pools.admission")
    ) {
        self.client = client
        self.reservationTTL = .milliseconds(Self.milliseconds(reservationTTL))
        self.concurrencyRetryAfter = .milliseconds(Self.milliseconds(concurrencyRetryAfter))
        self.settlementCapacity = max(1, settlementCapacity)
        self.settlementBatchSize = max(1, settlementBatchSize)
        let counters = Counters()
        self.counters = counters
        self.sender = RedisBatchSender(
            client: client, script: Self.settleScript,
            capacity: settlementCapacity, batchSize: settlementBatchSize,
            wording: Self.settlementWording, logger: logger,
            command: \.command, count: { try counters.count($0) }
        )
        var generator = SystemRandomNumberGenerator()
        self.nextID = Atomic(generator.next())
    }

    public var statistics: Statistics {
        Statistics(
            settled: counters.settled.load(ordering: .relaxed),
            unmatched: counters.unmatched.load(ordering: .relaxed),
            dropped: sender.dropped,
            pending: sender.pending
        )
    }

    // MARK: Admission

    /// Reserves one request, its tokens and a concurrency slot of `tenantID`, and its tokens
    /// and worst-case cost in each of its budgets, or refuses, atomically across every
    /// replica; asks for seeds (`needsSeed`) when Redis holds no state for a budget period.
    ///
    /// - Throws: ``RedisError`` when Redis cannot be reached, does not answer within the
    ///   client's timeouts, or answers with an error.
    public func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest) async throws -> AdmissionDecision {
        try await admit(tenantID: tenantID, limits: limits, request: request, at: nil)
    }

    /// An instant given to the scripts instead of Redis's `TIME`: for tests only, which need
    /// to say what time it is to compare with `AdmissionState`.
    struct FixedNow: Sendable {
        /// The instant in Redis milliseconds.
        var milliseconds: Int
        /// The same instant on this process's clock, for `Reservation.expiresAt`.
        var instant: ContinuousClock.Instant
    }

    func admit(tenantID: String, limits: TenantLimits, request: AdmissionRequest, at fixed: FixedNow?) async throws -> AdmissionDecision {
        let started = fixed?.instant ?? .now
        let keys = Keys(tenantID: tenantID)
        let arguments = admitArguments(limits: limits, request: request, now: fixed?.milliseconds)
        // A collision needs a 64-bit coincidence; a few draws settle it for good.
        for _ in 0..<4 {
            let id = Reservation.ID(nextID.wrappingAdd(1, ordering: .relaxed).newValue)
            let reply = try await client.evalSHA(
                script: Self.admitScript, keys: keys.all, arguments: [String(id.rawValue)] + arguments
            ).checked()
            switch try AdmitReply(reply, budgetCount: request.budgets.count) {
            case .idInUse:
                continue
            case .needsSeed(let positions):
                return .needsSeed(positions.map { request.budgets[$0].key })
            case .admitted(let headers, let throttled):
                var reservation = Reservation(
                    id: id, tenantID: tenantID, tokens: request.reservedTokens,
                    expiresAt: started + reservationTTL, headers: headers
                )
                reservation.micros = request.maximumCostMicros
                var seen = Set<BudgetPeriodKey>()
                reservation.budgets = request.budgets.map(\.key).filter { seen.insert($0).inserted }
                reservation.throttled = throttled
                return .admitted(reservation)
            case .refused(let refused):
                return .refused(refused.refusal(for: request))
            }
        }
        throw RedisError.protocolError("the admit script kept finding reservation ids in use")
    }

    /// The admit script's arguments after the reservation id.
    private func admitArguments(limits: TenantLimits, request: AdmissionRequest, now: Int?) -> [String] {
        var arguments = [
            String(Self.count(request.reservedTokens)),
            Self.limitArgument(limits.requestsPerMinute, largest: Self.largestLimit),
            Self.limitArgument(limits.tokensPerMinute, largest: Self.largestLimit),
            Self.limitArgument(limits.concurrentRequests, largest: Self.largestCount),
            String(Self.milliseconds(reservationTTL)),
            String(Self.milliseconds(concurrencyRetryAfter)),
            String(Self.milliseconds(Self.keyMargin)),
            now.map(String.init) ?? "",
            String(Self.micros(request.maximumCostMicros)),
            String(Self.unixMilliseconds(request.wallClockMilliseconds)),
            Self.limitArgument(request.throttledRequestsPerMinute, largest: Self.largestLimit),
            String(request.budgets.count),
        ]
        for budget in request.budgets {
            assert(!budget.key.scope.contains { $0 == "|" || $0.isWhitespace }, "budget scope \(budget.key.scope)")
            arguments += [
                budget.key.description,
                String(Self.unixMilliseconds(budget.resetsAt)),
                Self.limitArgument(budget.limitTokens, largest: Self.largestCount),
                budget.limitMicros.map { String(Self.micros($0)) } ?? "-1",
                budget.whenSpent.rawValue,
                budget.seed.map { String(Self.count($0.tokens)) } ?? "",
                budget.seed.map { String(Self.micros($0.micros)) } ?? "",
            ]
        }
        return arguments
    }

    // MARK: Settling

    /// Queues the settlement of `reservation` with the tokens the request used and what they
    /// cost; returns at once. ``run()`` sends it.
    public func settle(_ reservation: Reservation, actualTokens: Int, actualMicros: Int64) {
        enqueue(PendingSettlement(reservation: reservation, actualTokens: actualTokens, actualMicros: actualMicros, now: nil))
    }

    /// Queues a settlement at a given Redis instant: for tests only.
    func settle(_ reservation: Reservation, actualTokens: Int, actualMicros: Int64 = 0, atMilliseconds now: Int) {
        enqueue(PendingSettlement(reservation: reservation, actualTokens: actualTokens, actualMicros: actualMicros, now: now))
    }

    /// Settles at once and says what was settled: for tests, which compare it with
    /// `AdmissionState.settle`.
    /// - Returns: nil when the reservation was already settled or had expired.
    func settleImmediately(
        _ reservation: Reservation, actualTokens: Int, actualMicros: Int64 = 0, at fixed: FixedNow?
    ) async throws -> Settlement? {
        let pending = PendingSettlement(
            reservation: reservation, actualTokens: actualTokens, actualMicros: actualMicros, now: fixed?.milliseconds
        )
        let keys = Keys(tenantID: pending.tenantID)
        let reply = try await client.evalSHA(
            script: Self.settleScript, keys: keys.all, arguments: pending.scriptArguments
        ).checked()
        return try SettleReply(reply).settlement(actualTokens: pending.actualTokens)
    }

    /// A settlement waiting to be sent.
    struct PendingSettlement: Sendable, Hashable {
        var tenantID: String
        var id: Reservation.ID
        /// At least 0, at most `largestCount`.
        var actualTokens: Int
        /// At least 0, at most `largestCount`.
        var actualMicros: Int64
        /// The periods the reservation names: the usage is added to each, held or not.
        var budgets: [BudgetPeriodKey]
        /// Redis milliseconds to settle at, for tests; nil is `TIME`.
        var now: Int?

        init(reservation: Reservation, actualTokens: Int, actualMicros: Int64, now: Int?) {
            self.tenantID = reservation.tenantID
            self.id = reservation.id
            self.actualTokens = RedisAdmission.count(actualTokens)
            self.actualMicros = RedisAdmission.micros(actualMicros)
            self.budgets = reservation.budgets
            self.now = now
        }

        var scriptArguments: [String] {
            [
                String(id.rawValue), String(actualTokens), String(actualMicros),
                String(RedisAdmission.milliseconds(RedisAdmission.keyMargin)), now.map(String.init) ?? "",
            ] + budgets.map(\.description)
        }

        /// The `EVALSHA` command, for pipelines.
        var command: [String] {
            let keys = Keys(tenantID: tenantID).all
            return ["EVALSHA", RedisAdmission.settleScript.sha1, String(keys.count)] + keys + scriptArguments
        }
    }

    // MARK: Budgets

    /// A budget period's used and reserved amounts as Redis holds them, after releasing
    /// what expired reservations held; nil when Redis holds no state for the period.
    ///
    /// - Throws: ``RedisError`` when Redis cannot be reached or answers with an error.
    public func budgetStatus(tenantID: String, key: BudgetPeriodKey) async throws -> BudgetStatus? {
        try await budgetStatus(tenantID: tenantID, key: key, at: nil)
    }

    func budgetStatus(tenantID: String, key: BudgetPeriodKey, at fixed: FixedNow?) async throws -> BudgetStatus? {
        let reply = try await client.evalSHA(
            script: Self.budgetStatusScript, keys: Keys(tenantID: tenantID).all,
            arguments: [key.description, fixed.map { String($0.milliseconds) } ?? ""]
        ).checked()
        return try BudgetStatusReply(reply).status
    }

    /// Separate from the admission so that the sender's `count` can hold it without holding
    /// the admission that holds the sender. Drops are counted by the sender.
    final class Counters: Sendable {
        let settled = Atomic<Int>(0)
        let unmatched = Atomic<Int>(0)

        /// Counts a settle script's reply.
        func count(_ reply: RedisReply) throws(RedisError) {
            if try SettleReply(reply).reservedTokens != nil {
                settled.add(1, ordering: .relaxed)
            } else {
                unmatched.add(1, ordering: .relaxed)
            }
        }
    }

    // MARK: Arguments

    /// Whole milliseconds in a duration, rounded up; zero for negative durations.
    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let wholeMilliseconds = Int(clamping: seconds).multipliedReportingOverflow(by: 1000)
        let roundedUp = Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        let (total, overflow) = wholeMilliseconds.partialValue.addingReportingOverflow(roundedUp)
        guard !wholeMilliseconds.overflow, !overflow else { return Int.max / 2 }
        return min(total, Int.max / 2)
    }

    /// A token count as the scripts take it: at least 0, at most `largestCount`.
    static func count(_ tokens: Int) -> Int {
        min(max(0, tokens), largestCount)
    }

    /// Micro-units as the scripts take them: at least 0, at most `largestCount`.
    static func micros(_ micros: Int64) -> Int64 {
        min(max(0, micros), Int64(largestCount))
    }

    /// A Unix instant in milliseconds, within `largestCount` of the epoch.
    static func unixMilliseconds(_ instant: Int64) -> Int64 {
        min(max(instant, -Int64(largestCount)), Int64(largestCount))
    }

    private static func limitArgument(_ limit: Int?, largest: Int) -> String {
        limit.map { String(min(max(0, $0), largest)) } ?? "-1"
    }
}
