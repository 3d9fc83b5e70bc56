import Foundation
import Pools
import Prometheus

extension ProxyMetrics {
    // MARK: Read at scrape time, from the shared stores

    /// The least time between two reads of the stores for the live gauges.
    static let liveRefreshInterval: Duration = .seconds(2)

    /// Updates the gauges that need a store's answer, before ``render(topology:usageWriter:)``:
    /// each key-pool deployment's provider keys by state, and whether Redis answers. Each
    /// call is bounded by the store's timeouts (1 s on Redis); while Redis does not answer,
    /// or a store fails, the key gauges stay as they were (one timeout per scrape, not one
    /// per deployment).
    ///
    /// However often `/metrics` is scraped (it needs no credentials), the stores are read at
    /// most once every ``liveRefreshInterval``, by one scrape at a time; the others show
    /// the last figures.
    func refreshLiveGauges(
        topology: Topology, catalogue: ProviderKeyCatalogue, keyPool: any KeyPool, redis: RedisClient?,
        now: Date = Date()
    ) async {
        let started = ContinuousClock.now
        let due = liveRefresh.withLock { refresh in
            guard !refresh.running, refresh.last.map({ started - $0 >= Self.liveRefreshInterval }) ?? true else { return false }
            refresh = (true, started)
            return true
        }
        guard due else { return }
        defer { liveRefresh.withLock { $0.running = false } }
        if let redis {
            let up: Bool
            do {
                up = try await redis.command(["PING"]).string == "PONG"
            } catch {
                up = false
            }
            registry.makeGauge(
                name: "switchyard_redis_up",
                help: "1 when Redis answered this scrape's PING, else 0 (only with --redis)."
            ).set(Int64(up ? 1 : 0))
            guard up else { return }
        }
        for deployment in topology.deployments.values where deployment.usesKeyPool {
            let (active, disabled) = catalogue.keyIDs(provider: deployment.providerID)
            guard let statuses = try? await keyPool.status(pool: deployment.id, keyIDs: active) else { continue }
            var counts = ["available": 0, "cooling_down": 0, "disabled": disabled.count]
            for id in active {
                let status = statuses[id]
                if status?.disabledReason != nil {
                    counts["disabled"]! += 1
                } else if let until = status?.coolingDownUntil, until > now {
                    counts["cooling_down"]! += 1
                } else {
                    counts["available"]! += 1
                }
            }
            for (state, count) in counts {
                registry.makeGauge(
                    name: "switchyard_provider_keys",
                    labels: [("deployment", deployment.id), ("provider", deployment.providerID), ("state", state)],
                    help: "A deployment's provider keys by state now: available, cooling_down (rate limited or overloaded), disabled (credentials rejected, until enabled); draining and retired keys are left out."
                ).set(Int64(count))
            }
        }
    }
}
