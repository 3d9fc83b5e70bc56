import Billing
import Prometheus
import Providers
import Synchronization

/// Switchyard's Prometheus metrics, served at `/metrics`. Labels name models, deployments,
/// pools, tiers and statuses, never keys; tenant ids only with `--metrics-tenant-labels`,
/// and then for a bounded number of tenants (``TenantLabels``).
public final class ProxyMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// The `tenant` label of the request, token and queue metrics; nil leaves it out.
    let tenantLabels: TenantLabels?
    private let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
    ]

    let queueWaitBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]
    let queueMetricsCache = Mutex<[PoolTier: QueueMetrics]>([:])
    /// The queue depth series shown so far.
    let queueDepthSeries = Mutex<Set<PoolTier>>([])
    /// Whether a scrape is reading the stores for the live gauges, and when one last began.
    let liveRefresh = Mutex<(running: Bool, last: ContinuousClock.Instant?)>((false, nil))

    private let limitStoreFailures: Counter
    private let openConnectionGauge: Gauge
    private let connectionLimitCounter: Counter

    /// - Parameter tenantLabelLimit: Label the request, token and queue metrics by tenant,
    ///   for at most this many tenants (the rest fold into `tenant="other"`); nil leaves
    ///   tenants out of every label.
    public init(tenantLabelLimit: Int? = nil) {
        tenantLabels = tenantLabelLimit.map(TenantLabels.init(limit:))
        openConnectionGauge = registry.makeGauge(name: "switchyard_open_connections", help: "Client connections open now.")
        connectionLimitCounter = registry.makeCounter(
            name: "switchyard_connection_limit_reached_total",
            help: "Times the open client connections reached --max-connections and accepting paused."
        )
        clientAborts = registry.makeCounter(name: "switchyard_client_aborts_total", help: "Requests the client abandoned mid-answer.")
        limitStoreFailures = registry.makeCounter(
            name: "switchyard_limit_store_failures_total",
            help: "Admissions the shared tenant-limit store (Redis) could not decide."
        )
    }

    // MARK: Client connections

    private let connectionCloseCounters = Mutex<[String: Counter]>([:])

    /// Counts a client connection Switchyard closed on its own: `header_timeout`,
    /// `body_timeout`, `idle_timeout`, `malformed_request` or `body_too_large`.
    func connectionClosed(reason: String) {
        connectionCloseCounters.withLock { counters in
            if let counter = counters[reason] { return counter }
            let counter = registry.makeCounter(
                name: "switchyard_connections_closed_total",
                labels: [("reason", reason)],
                help: "Client connections Switchyard closed itself, by reason."
            )
            counters[reason] = counter
            return counter
        }.increment()
    }


    /// The client connections open now.
    func openConnections(_ count: Int) {
        openConnectionGauge.set(Int64(count))
    }

    /// Counts each time the connection limit was reached and accepting paused.
    func connectionLimitReached() {
        connectionLimitCounter.increment()
    }

    /// Counts an admission that Redis could not decide.
    func limitStoreFailure() {
        limitStoreFailures.increment()
    }

    private let responseCounters = Mutex<[Int: Counter]>([:])

    /// Counts one response by status (every route, including refusals).
    func response(status: Int) {
        responseCounters.withLock { counters in
            if let counter = counters[status] { return counter }
            let counter = registry.makeCounter(
                name: "switchyard_http_responses_total",
                labels: [("status", String(status))],
                help: "HTTP responses by status code."
            )
            counters[status] = counter
            return counter
        }.increment()
    }

    private let keyEventCounters = Mutex<[String: Counter]>([:])

    /// Counts a provider key's health event: `cooldown` (rate limited or overloaded),
    /// `disabled` (credentials rejected) or `failed` (5xx, timeout, reset). Labelled by
    /// provider and key id, never by the key itself.
    func providerKeyEvent(_ event: String, provider: String, keyID: String) {
        let name = "\(event)|\(provider)|\(keyID)"
        keyEventCounters.withLock { counters in
            if let counter = counters[name] { return counter }
            let counter = registry.makeCounter(
                name: "switchyard_provider_key_events_total",
                labels: [("event", event), ("provider", provider), ("key", keyID)],
                help: "Provider key health events: cooldown, disabled, failed."
            )
            counters[name] = counter
            return counter
        }.increment()
    }

    /// The metrics one kind of request touches, made once and reused: building labelled
    /// metrics through the registry costs string work and a lock per metric.
    private struct RequestMetrics: Sendable {
        var requests: Counter
        var promptTokens: Counter
        var completionTokens: Counter
        var cost: Counter
        var duration: DurationHistogram
        var firstByte: DurationHistogram
    }

    private struct RequestKey: Hashable, Sendable {
        var model: String
        var deployment: String
        var status: Int
        var tier: String
        var currency: String
        /// The tenant label, when tenants are labelled.
        var tenant: String?
    }

    private let requestMetrics = Mutex<[RequestKey: RequestMetrics]>([:])
    private let clientAborts: Counter

    /// Records one metered request of a tenant of `tier`: its outcome, tokens, cost and timings.
    func request(_ event: UsageEvent, tier: String) {
        let key = RequestKey(
            model: event.model, deployment: event.deployment ?? "none", status: event.status, tier: tier,
            currency: event.currency, tenant: tenantLabels?.label(event.tenantID)
        )
        let metrics = requestMetrics.withLock { cache in
            if let metrics = cache[key] { return metrics }
            let metrics = makeRequestMetrics(key)
            cache[key] = metrics
            return metrics
        }
        metrics.requests.increment()
        if event.promptTokens > 0 { metrics.promptTokens.increment(by: Int64(event.promptTokens)) }
        if event.completionTokens > 0 { metrics.completionTokens.increment(by: Int64(event.completionTokens)) }
        if event.costMicros > 0 { metrics.cost.increment(by: event.costMicros) }
        metrics.duration.record(.milliseconds(event.durationMilliseconds))
        if let firstByte = event.timeToFirstTokenMilliseconds { metrics.firstByte.record(.milliseconds(firstByte)) }
        if event.clientAborted { clientAborts.increment() }
    }

    private func makeRequestMetrics(_ key: RequestKey) -> RequestMetrics {
        let route = [("model", key.model), ("deployment", key.deployment)]
        // The histograms stay unlabelled by tenant: each series of theirs is a dozen buckets.
        let tenant = key.tenant.map { [("tenant", $0)] } ?? []
        return RequestMetrics(
            requests: registry.makeCounter(
                name: "switchyard_upstream_requests_total",
                labels: route + [("status", String(key.status))] + tenant,
                help: "Requests routed to a deployment, by the status the client saw."
            ),
            promptTokens: registry.makeCounter(
                name: "switchyard_tokens_total", labels: route + [("kind", "prompt"), ("tier", key.tier)] + tenant,
                help: "Tokens metered, by kind and the tenant's tier."
            ),
            completionTokens: registry.makeCounter(
                name: "switchyard_tokens_total", labels: route + [("kind", "completion"), ("tier", key.tier)] + tenant,
                help: "Tokens metered, by kind and the tenant's tier."
            ),
            cost: registry.makeCounter(
                name: "switchyard_cost_micros_total",
                labels: route + [("tier", key.tier), ("currency", key.currency)] + tenant,
                help: "What metered tokens cost at the price table, in micro-units of the currency, by the tenant's tier."
            ),
            duration: registry.makeDurationHistogram(
                name: "switchyard_request_duration_seconds",
                labels: route,
                buckets: durationBuckets,
                help: "Time from request to the end of the response."
            ),
            firstByte: registry.makeDurationHistogram(
                name: "switchyard_time_to_first_byte_seconds",
                labels: route,
                buckets: durationBuckets,
                help: "Time from request to the upstream's first response byte."
            )
        )
    }

    // MARK: Provider capacity

    private struct CapacityGauges: Sendable {
        var limit: [String: Gauge]
        var remaining: [String: Gauge]
        var retryAfter: Gauge
    }

    private let capacityGauges = Mutex<[String: CapacityGauges]>([:])

    /// Shows what a provider last said about a deployment's capacity (the key-pool work
    /// acts on it; operators see it here first).
    func upstreamCapacity(deployment: String, signals: RateLimitSignals) {
        guard !signals.isEmpty else { return }
        let gauges = capacityGauges.withLock { cache in
            if let gauges = cache[deployment] { return gauges }
            var limit: [String: Gauge] = [:]
            var remaining: [String: Gauge] = [:]
            for window in ["requests", "tokens", "input_tokens", "output_tokens"] {
                let labels = [("deployment", deployment), ("window", window)]
                limit[window] = registry.makeGauge(
                    name: "switchyard_upstream_ratelimit_limit", labels: labels,
                    help: "The limit the provider last reported for a deployment's window."
                )
                remaining[window] = registry.makeGauge(
                    name: "switchyard_upstream_ratelimit_remaining", labels: labels,
                    help: "What the provider last reported as remaining in a deployment's window."
                )
            }
            let gauges = CapacityGauges(
                limit: limit,
                remaining: remaining,
                retryAfter: registry.makeGauge(
                    name: "switchyard_upstream_retry_after_seconds", labels: [("deployment", deployment)],
                    help: "The last retry-after the provider sent for a deployment."
                )
            )
            cache[deployment] = gauges
            return gauges
        }
        let windows = [
            ("requests", signals.requests), ("tokens", signals.tokens),
            ("input_tokens", signals.inputTokens), ("output_tokens", signals.outputTokens),
        ]
        for (name, window) in windows {
            if let limit = window.limit { gauges.limit[name]?.set(Int64(limit)) }
            if let remaining = window.remaining { gauges.remaining[name]?.set(Int64(remaining)) }
        }
        if let retryAfter = signals.retryAfter {
            let (seconds, attoseconds) = retryAfter.components
            gauges.retryAfter.set(Double(seconds) + Double(attoseconds) / 1e18)
        }
    }

    /// Updates the gauges read from live state, then renders the exposition text.
    func render(topology: Topology, usageWriter: UsageWriter) -> [UInt8] {
        let statistics = usageWriter.statistics
        registry.makeGauge(
            name: "switchyard_usage_events_pending",
            help: "Usage events taken since start and not yet delivered (to the ledger, or the usage stream with Redis)."
        ).set(Int64(statistics.pending))
        registry.makeGauge(
            name: "switchyard_usage_events_written",
            help: "Usage events delivered since start (to the ledger, or the usage stream with Redis)."
        ).set(Int64(statistics.written))
        registry.makeGauge(
            name: "switchyard_usage_events_dropped",
            help: "Usage events lost since start: the spool could not be written (disk full) and memory was full, or a spool line could not be read."
        ).set(Int64(statistics.dropped))
        registry.makeGauge(
            name: "switchyard_usage_spool_write_failures",
            help: "Usage events the spool could not take since start (disk full): held in memory only, so a crash would lose them."
        ).set(Int64(statistics.spoolFailures))
        for (name, pool) in topology.enginePools {
            for (index, inFlight) in pool.inFlight.enumerated() {
                let labels = [("pool", name), ("replica", pool.replicas[index].baseURL)]
                registry.makeGauge(
                    name: "switchyard_engine_in_flight", labels: labels, help: "Requests in flight per engine replica."
                ).set(Int64(inFlight))
                registry.makeGauge(
                    name: "switchyard_engine_slots", labels: labels,
                    help: "An engine replica's slots, as configured: in flight over slots is its utilisation."
                ).set(Int64(pool.replicas[index].slots))
            }
        }
        for (tier, contract) in topology.contracts {
            guard let wait = contract.maximumQueueWait else { continue }
            registry.makeGauge(
                name: "switchyard_tier_max_queue_wait_seconds", labels: [("tier", tier)],
                help: "The longest a tier's request may wait for an engine slot (max_queue_wait_ms), by contract."
            ).set(Double(wait.wholeMilliseconds) / 1_000)
        }
        renderQueues(topology.enginePools, tiers: Array(topology.contracts.keys))
        var buffer: [UInt8] = []
        buffer.reserveCapacity(8 << 10)
        registry.emit(into: &buffer)
        return buffer
    }
}

/// The tenants that get a `tenant` label of their own: the first `limit` seen since start,
/// so the series a metric store holds stay bounded however many tenants call; every other
/// tenant is counted under `tenant="other"`.
final class TenantLabels: Sendable {
    static let other = "other"
    let limit: Int
    private let labelled = Mutex<Set<String>>([])

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    func label(_ tenant: String) -> String {
        labelled.withLock { labelled in
            if labelled.contains(tenant) { return tenant }
            guard labelled.count < limit else { return Self.other }
            labelled.insert(tenant)
            return tenant
        }
    }
}
