import Pools

extension AdminResources {
    /// `GET /admin/v1/pools`: what each engine pool is doing now.
    struct PoolBody: Codable, Sendable {
        struct Replica: Codable, Sendable {
            var url: String
            var slots: Int
            var inFlight: Int
        }

        struct Tier: Codable, Sendable {
            var name: String
            var band: Int
            var reservedShare: Double
            var inFlight: Int
            var queued: Int
            /// When a request of this tier would start if it asked now; null before the
            /// pool has measured a slot.
            var predictedStartMs: Int?
        }

        var id: String
        var scheduling: String
        var slots: Int
        var inFlight: Int
        var queued: Int
        var maxQueue: Int
        /// The measured time a slot is held (moving average); null before the first.
        var serviceTimeMs: Int?
        var replicas: [Replica]
        /// Every configured tier, highest band first.
        var tiers: [Tier]

        init(_ pool: EnginePool, contracts: [Contract]) {
            let snapshot = pool.snapshot
            let perReplica = pool.inFlight
            self.id = pool.name
            self.scheduling = pool.scheduling.rawValue
            self.slots = pool.capacity
            self.inFlight = snapshot.inFlight
            self.queued = snapshot.waiting
            self.maxQueue = pool.maximumQueue
            self.serviceTimeMs = snapshot.serviceTime.map(\.wholeMilliseconds)
            self.replicas = pool.replicas.enumerated().map { index, replica in
                Replica(url: replica.baseURL, slots: replica.slots, inFlight: perReplica[index])
            }
            self.tiers = contracts.sorted { ($0.band, $1.tier) > ($1.band, $0.tier) }.map { contract in
                let counts = snapshot.tiers[contract.tier]
                let demand = EnginePool.Demand(tenant: "", contract: contract)
                return Tier(
                    name: contract.tier,
                    band: contract.band,
                    reservedShare: contract.reservedShare,
                    inFlight: counts?.inFlight ?? 0,
                    queued: counts?.waiting ?? 0,
                    predictedStartMs: pool.predictedStart(for: demand).map(\.wholeMilliseconds)
                )
            }
        }
    }
}
