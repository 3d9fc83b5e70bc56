import Billing
import Foundation
import Pools
import Providers
import Synchronization

/// Produces the one usage event of a routed request. Whatever path the request takes
/// (answered, failed, abandoned before its body was written), exactly one event is
/// recorded: by `finish`, or else when the meter is dropped, as client-aborted.
final class RequestMeter: Sendable {
    struct Facts: Sendable {
        var requestID: String
        var tenant: AuthenticatedTenant
        var model: String
        var streamed: Bool
        var startedAt: Date
        var startInstant: ContinuousClock.Instant
        /// Bytes of the client's request body: the basis of a prompt estimate.
        var requestBodyBytes: Int
        /// What the tenant is billed under: its tier's quota and overage price.
        var terms: BillingTerms? {
            let contract = tenant.contract
            guard contract.quota != nil || contract.overagePerMillion != nil else { return nil }
            return BillingTerms(monthlyQuotaTokens: contract.quota?.monthlyTokens, overagePerMillion: contract.overagePerMillion)
        }
    }

    /// What the request came to.
    struct Outcome: Sendable {
        var deployment: Topology.Deployment?
        var status: Int
        var errorType: String?
        var usage: TokenUsage?
        /// Completion tokens to assume when the upstream reported none.
        var completionEstimate: Int = 0
        var firstByte: ContinuousClock.Instant?
        var clientAborted = false

        /// A request no upstream answered (refused, unreachable, or an error answer): no
        /// tokens were served, so none are counted or billed.
        static func unanswered(deployment: Topology.Deployment?, error: OpenAIError) -> Outcome {
            Outcome(
                deployment: deployment, status: error.status, errorType: error.type,
                usage: TokenUsage(promptTokens: 0, completionTokens: 0)
            )
        }
    }

    private let facts: Facts
    private let writer: UsageWriter
    private let metrics: ProxyMetrics
    /// The tenant-limit reservation to settle with the tokens really used.
    private let reservation: (Reservation, any TenantAdmission)?
    private let keyPool: any KeyPool
    private let accessLog: AccessLog?
    private let trace: RequestTrace?
    private let activity: TenantActivity?
    private let deployment = Mutex<Topology.Deployment?>(nil)
    /// The upstream serving the answer: its engine replica or provider key is given back
    /// when the event is recorded, so even an answer whose body is never written frees it.
    private let placement = Mutex<Placement?>(nil)
    private let recorded = Atomic<Bool>(false)
    /// What scheduling did: the wait for an engine slot, and whether the request spilled.
    private let schedule = Mutex<(queueWait: Duration?, spilled: Bool)>((nil, false))

    init(
        facts: Facts, writer: UsageWriter, metrics: ProxyMetrics, reservation: (Reservation, any TenantAdmission)?,
        keyPool: any KeyPool, accessLog: AccessLog? = nil, trace: RequestTrace? = nil, activity: TenantActivity? = nil
    ) {
        self.activity = activity
        activity?.started(tenant: facts.tenant.tenantID)
        self.accessLog = accessLog
        self.trace = trace
        self.facts = facts
        self.writer = writer
        self.metrics = metrics
        self.reservation = reservation
        self.keyPool = keyPool
    }

    /// The prompt tokens the ledger records when no upstream reports usage.
    var promptTokenEstimate: Int {
        TokenUsage.estimateTokens(byteCount: facts.requestBodyBytes)
    }

    /// Notes the deployment in use, for the safety-net event.
    func use(_ deployment: Topology.Deployment) {
        self.deployment.withLock { $0 = deployment }
    }

    /// Takes over the placement whose answer is being relayed; it is released with the event.
    func use(_ placement: Placement) {
        self.placement.withLock { $0 = placement }
    }

    /// Notes how long the request waited for an engine slot (the longest, when it asked
    /// more than one pool).
    func queued(for wait: Duration) {
        schedule.withLock { $0.queueWait = max($0.queueWait ?? .zero, wait) }
    }

    /// Notes that the request left a saturated engine pool for an external provider.
    func spilled(_ spilled: Bool) {
        schedule.withLock { $0.spilled = spilled }
    }

    func finish(_ outcome: Outcome, now: ContinuousClock.Instant = .now) {
        guard !recorded.exchange(true, ordering: .acquiringAndReleasing) else { return }
        record(event(outcome, now: now))
    }

    deinit {
        guard !recorded.load(ordering: .acquiring) else { return }
        let outcome = Outcome(deployment: deployment.withLock { $0 }, status: 499, errorType: "client_closed_request", clientAborted: true)
        record(event(outcome, now: .now))
    }

    private func record(_ event: UsageEvent) {
        let tokens = event.promptTokens + event.completionTokens
        if let (reservation, admission) = reservation {
            admission.settle(reservation, actualTokens: tokens, actualMicros: event.costMicros)
        }
        if let placement = placement.withLock({ $0 }) {
            placement.release()
            if let choice = placement.key {
                // A shutdown cutting the answer off is not the key's failure.
                let outcome: KeyOutcome = event.status >= 500 && event.errorType != "shutting_down"
                    ? .failed(reason: "the answer broke off (status \(event.status))")
                    : .succeeded(placement.capacity)
                keyPool.finish(choice.lease, actualTokens: tokens, outcome: outcome)
            }
        }
        metrics.request(event, tier: facts.tenant.tier)
        writer.record(event)
        accessLog?.record(event)
        activity?.finished(event)
        trace?.finished(event)
    }

    private func event(_ outcome: Outcome, now: ContinuousClock.Instant) -> UsageEvent {
        let usage = outcome.usage ?? TokenUsage(
            promptTokens: outcome.deployment == nil ? 0 : promptTokenEstimate,
            completionTokens: outcome.completionEstimate,
            estimated: true
        )
        let price = outcome.deployment?.price
        let schedule = schedule.withLock { $0 }
        let placement = placement.withLock { $0 }
        return UsageEvent(
            requestID: facts.requestID,
            tenantID: facts.tenant.tenantID,
            tenantKeyID: facts.tenant.keyID,
            model: facts.model,
            deployment: outcome.deployment?.id,
            provider: outcome.deployment?.providerID,
            providerKeyID: placement?.key?.key.id,
            promptTokens: usage.promptTokens,
            cachedTokens: usage.cachedPromptTokens,
            completionTokens: usage.completionTokens,
            reasoningTokens: usage.reasoningTokens,
            tokensEstimated: usage.estimated,
            costMicros: price?.cost(
                promptTokens: usage.promptTokens,
                cachedTokens: usage.cachedPromptTokens,
                completionTokens: usage.completionTokens
            ) ?? 0,
            currency: price?.currency ?? "USD",
            status: outcome.status,
            errorType: outcome.errorType,
            startedAt: facts.startedAt,
            timeToFirstTokenMilliseconds: outcome.firstByte.map { ($0 - facts.startInstant).wholeMilliseconds },
            durationMilliseconds: (now - facts.startInstant).wholeMilliseconds,
            streamed: facts.streamed,
            clientAborted: outcome.clientAborted,
            queueMilliseconds: schedule.queueWait.map(\.wholeMilliseconds),
            spilled: schedule.spilled,
            enginePool: placement?.enginePoolName,
            slotMilliseconds: placement?.slotTime(until: now).map(\.wholeMilliseconds),
            userID: facts.tenant.userID,
            terms: facts.terms
        )
    }
}
