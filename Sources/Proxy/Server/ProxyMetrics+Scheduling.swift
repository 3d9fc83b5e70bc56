import Pools
import Prometheus
import Synchronization

extension ProxyMetrics {
    // MARK: Engine pool queues

    /// The metrics of one tier on one engine pool, made once.
    struct QueueMetrics: Sendable {
        var wait: DurationHistogram
        var refusals: Counter
    }

    struct PoolTier: Hashable, Sendable {
        var pool: String
        var tier: String
        /// The tenant label, when tenants are labelled.
        var tenant: String?

        var labels: [(String, String)] {
            [("pool", pool), ("tier", tier)] + (tenant.map { [("tenant", $0)] } ?? [])
        }
    }

    private func queueMetrics(pool: String, tier: String, tenant: String) -> QueueMetrics {
        let key = PoolTier(pool: pool, tier: tier, tenant: tenantLabels?.label(tenant))
        return queueMetricsCache.withLock { cache in
            if let metrics = cache[key] { return metrics }
            let labels = key.labels
            let metrics = QueueMetrics(
                wait: registry.makeDurationHistogram(
                    name: "switchyard_queue_wait_seconds",
                    labels: labels,
                    buckets: queueWaitBuckets,
                    help: "Time a request waited for an engine slot, by pool and tier."
                ),
                refusals: registry.makeCounter(
                    name: "switchyard_capacity_refusals_total",
                    labels: labels,
                    help: "Requests refused with 503 capacity_exhausted, by pool and tier."
                )
            )
            cache[key] = metrics
            return metrics
        }
    }

    /// Records how long a request of `tenant` waited for a slot of `pool` (zero when one was free).
    func queueWait(pool: String, tenant: AuthenticatedTenant, _ wait: Duration) {
        queueMetrics(pool: pool, tier: tenant.tier, tenant: tenant.tenantID).wait.record(wait)
    }

    /// Counts a request of `tenant` that the engine pool of `deployment` refused for capacity.
    func capacityRefusal(on deployment: Topology.Deployment, tenant: AuthenticatedTenant) {
        guard let pool = deployment.enginePool else { return }
        queueMetrics(pool: pool.name, tier: tenant.tier, tenant: tenant.tenantID).refusals.increment()
    }

    /// Counts a request refused because a quota or budget is spent (`code`
    /// `quota_exhausted` or `budget_exceeded`), by tier; `throttled` when a spent
    /// budget's throttled rate refused it.
    func budgetRefusal(tier: String, code: String, throttled: Bool) {
        registry.makeCounter(
            name: "switchyard_budget_refusals_total",
            labels: [("tier", tier), ("code", code), ("throttled", throttled ? "true" : "false")],
            help: "Requests refused with 429 insufficient_quota, by tier, code and whether the throttled rate refused them."
        ).increment()
    }

    /// Counts a request admitted at the throttled rate of a spent quota or budget.
    func throttledAdmission(tier: String) {
        registry.makeCounter(
            name: "switchyard_throttled_requests_total",
            labels: [("tier", tier)],
            help: "Requests served in the lowest band because a quota or budget that throttles is spent."
        ).increment()
    }

    /// Counts a request a saturated engine pool sent to an external deployment.
    func spillover(model: String, deployment: String) {
        registry.makeCounter(
            name: "switchyard_spillovers_total",
            labels: [("model", model), ("deployment", deployment)],
            help: "Requests served by an external deployment because an engine pool was saturated."
        ).increment()
    }

    /// The queue depth gauges, read from the pools at scrape time. With tenant labels, a
    /// series shown once is kept, at zero while its tenant waits for nothing, and each
    /// tier has its `tenant="other"` series from the start, so a pool nobody waits for
    /// still shows its zeros.
    func renderQueues(_ pools: [String: EnginePool], tiers: [String]) {
        for (name, pool) in pools {
            var depths: [PoolTier: Int] = [:]
            if let tenantLabels {
                for tier in tiers { depths[PoolTier(pool: name, tier: tier, tenant: TenantLabels.other)] = 0 }
                for (tenant, waiting) in pool.waitingByTenant {
                    let label = tenantLabels.label(tenant)
                    for (tier, count) in waiting { depths[PoolTier(pool: name, tier: tier, tenant: label), default: 0] += count }
                }
            } else {
                let snapshot = pool.snapshot
                for tier in Set(tiers).union(snapshot.tiers.keys) {
                    depths[PoolTier(pool: name, tier: tier)] = snapshot.tiers[tier]?.waiting ?? 0
                }
            }
            queueDepthSeries.withLock { shown in
                for key in shown where key.pool == name && depths[key] == nil { depths[key] = 0 }
                shown.formUnion(depths.keys)
            }
            for (key, depth) in depths {
                registry.makeGauge(
                    name: "switchyard_queue_depth",
                    labels: key.labels,
                    help: "Requests waiting for an engine slot, by pool and tier."
                ).set(Int64(depth))
            }
        }
    }
}
