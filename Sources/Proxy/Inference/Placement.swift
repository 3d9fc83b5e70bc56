import Pools
import Providers

/// Where one attempt goes: the provider endpoint with a key from its pool, or a slot of
/// an engine pool on one of its replicas.
///
/// What never changes is kept once, out of line: a placement is handed from the route to
/// the attempt and to the meter, and each copy is then a reference, not half a kilobyte.
struct Placement: Sendable {
    private final class Where: Sendable {
        let deploymentID: String
        let upstreamModel: String
        let endpoint: ProviderEndpoint
        let key: ProviderKeys.Choice?
        let pool: EnginePool?
        let lease: EnginePool.Lease?

        init(
            deploymentID: String, upstreamModel: String, endpoint: ProviderEndpoint, key: ProviderKeys.Choice?,
            pool: EnginePool?, lease: EnginePool.Lease?
        ) {
            self.deploymentID = deploymentID
            self.upstreamModel = upstreamModel
            self.endpoint = endpoint
            self.key = key
            self.pool = pool
            self.lease = lease
        }
    }

    private let place: Where
    /// What the provider reported of the key's capacity on its answer.
    var capacity: ReportedCapacity?

    /// The deployment the attempt is on.
    var deploymentID: String { place.deploymentID }
    /// The model name the upstream knows, which a tenant must never see.
    var upstreamModel: String { place.upstreamModel }
    var endpoint: ProviderEndpoint { place.endpoint }
    /// The provider key, for deployments of external providers.
    var key: ProviderKeys.Choice? { place.key }
    private var pool: EnginePool? { place.pool }
    private var lease: EnginePool.Lease? { place.lease }

    /// An attempt on an external provider, with one of its keys.
    init(_ deployment: Topology.Deployment, key: ProviderKeys.Choice) {
        var endpoint = deployment.endpoint
        endpoint.apiKey = key.key.secret
        place = Where(
            deploymentID: deployment.id, upstreamModel: deployment.upstreamModel, endpoint: endpoint, key: key,
            pool: nil, lease: nil
        )
    }

    /// An attempt on an engine pool, in the slot `lease` holds.
    init(_ deployment: Topology.Deployment, pool: EnginePool, lease: EnginePool.Lease) {
        var endpoint = deployment.endpoint
        endpoint.baseURL = lease.baseURL.hasSuffix("/") ? String(lease.baseURL.dropLast()) : lease.baseURL
        place = Where(
            deploymentID: deployment.id, upstreamModel: deployment.upstreamModel, endpoint: endpoint, key: nil,
            pool: pool, lease: lease
        )
    }

    /// How long the request waited for its engine slot; zero for providers.
    var queueWait: Duration { lease?.waited ?? .zero }

    /// The engine pool holding the slot; nil for providers.
    var enginePoolName: String? { pool?.name }

    /// How long the slot has been held by `now`: the request's occupancy of the pool, the
    /// basis of its share of the pool's cost. nil for providers.
    func slotTime(until now: ContinuousClock.Instant) -> Duration? {
        lease.map { now - $0.grantedAt }
    }

    /// Takes the credential this attempt was sent with out of upstream text the tenant
    /// sees, and what would name the upstream: its model becomes `publicModel`.
    func redaction(naming publicModel: String) -> SecretRedaction {
        SecretRedaction(secrets: endpoint.apiKey.map { [$0] } ?? [], renaming: [upstreamModel: publicModel])
    }

    /// Gives back the engine slot. Once an answer is being relayed the meter does this,
    /// and gives back the key with the tokens used; before, the pipeline does, reporting
    /// the key's failure.
    ///
    /// - Parameter served: false for a slot given back without serving the request, so
    ///   its hold time stays out of the pool's measured service time.
    func release(served: Bool = true) {
        if let pool, let lease { pool.release(lease, served: served) }
    }

    /// The same engine slot on another replica, after this one could not be reached: the
    /// request keeps its place rather than queueing again. nil for provider placements.
    func relocated(_ deployment: Topology.Deployment) -> Placement? {
        guard let pool, let lease else { return nil }
        return Placement(deployment, pool: pool, lease: pool.relocate(lease))
    }

    /// The engine slot kept from a replica that could not be reached, moved to another
    /// replica when the next attempt is on the same deployment (the request keeps its
    /// place rather than queueing again), else given back. Empties `kept` either way.
    static func moving(_ kept: inout Placement?, to deployment: Topology.Deployment) -> Placement? {
        guard let placement = kept.take() else { return nil }
        if placement.deploymentID == deployment.id, let moved = placement.relocated(deployment) { return moved }
        placement.release(served: false)
        return nil
    }

    func markUnreachable() {
        if let pool, let lease { pool.markUnreachable(lease) }
    }
}
