import Pools
import Providers

/// Where one attempt goes: the provider endpoint with a key from its pool, or an engine
/// replica leased from its pool.
struct Placement: Sendable {
    let endpoint: ProviderEndpoint
    /// The provider key, for deployments of external providers.
    let key: ProviderKeys.Choice?
    /// What the provider reported of the key's capacity on its answer.
    var capacity: ReportedCapacity?
    private let pool: EnginePool?
    private let lease: EnginePool.Lease?

    init(_ deployment: Topology.Deployment, key: ProviderKeys.Choice? = nil) {
        self.key = key
        switch deployment.target {
        case .provider(var endpoint):
            if let key { endpoint.apiKey = key.key.secret }
            self.endpoint = endpoint
            self.pool = nil
            self.lease = nil
        case .engine(let pool, var endpoint):
            let lease = pool.acquire()
            endpoint.baseURL = lease.baseURL.hasSuffix("/") ? String(lease.baseURL.dropLast()) : lease.baseURL
            self.endpoint = endpoint
            self.pool = pool
            self.lease = lease
        }
    }

    /// Takes the credential this attempt was sent with out of upstream text the tenant sees.
    var redaction: SecretRedaction {
        SecretRedaction(secrets: endpoint.apiKey.map { [$0] } ?? [])
    }

    /// Gives back the engine replica. Once an answer is being relayed the meter does this,
    /// and gives back the key with the tokens used; before, the pipeline does, reporting
    /// the key's failure.
    func release() {
        if let pool, let lease { pool.release(lease) }
    }

    func markUnreachable() {
        if let pool, let lease { pool.markUnreachable(lease) }
    }
}
