import Billing
import Directory
import Foundation
import Logging
import Pools
import Providers

/// Provider keys as the request pipeline uses them: the catalogue says which keys may
/// serve a tenant, the key pool picks the one with the most headroom and keeps their
/// health (shared through Redis when configured), and the directory keeps a disabled key
/// disabled across restarts.
struct ProviderKeys: Sendable {
    let catalogue: ProviderKeyCatalogue
    let pool: any KeyPool
    let directory: Directory
    let metrics: ProxyMetrics
    let logger: Logger

    /// A key chosen for one attempt.
    struct Choice: Sendable {
        var lease: KeyLease
        var key: ProviderKeyCatalogue.Key
    }

    enum Selection: Sendable {
        case chosen(Choice)
        /// No key can take the request now; the error says why, `retryAfter` when one can.
        case unavailable(OpenAIError, retryAfter: Duration?)
    }

    /// Whether `deployment` can be served at all: engines always, external providers
    /// while their pool has an active key.
    func isServable(_ deployment: Topology.Deployment) -> Bool {
        !deployment.usesKeyPool || catalogue.hasActiveKeys(provider: deployment.providerID)
    }

    /// Picks a key of the deployment's provider for this tenant, skipping `excluding`.
    func select(
        for deployment: Topology.Deployment, tenant: AuthenticatedTenant, tokens: Int, excluding: Set<String>
    ) async -> Selection {
        let (keys, pooled) = catalogue.candidates(provider: deployment.providerID, tenantID: tenant.tenantID, tier: tenant.tier)
        guard !keys.isEmpty else {
            return .unavailable(OpenAIError(
                status: 503,
                // Tenants never learn which provider serves them: the message names none.
                message: "No upstream key serves this tenant for this model.",
                type: "server_error",
                code: "no_provider_key"
            ), retryAfter: nil)
        }
        let selection: KeySelection
        do {
            // One pool per deployment: providers limit a key per model, so a key's windows,
            // reported capacity and cooldowns are kept per deployment too.
            // Capacity other tiers have reserved on each key is not this tenant's to use.
            selection = try await pool.select(
                pool: deployment.id, candidates: pooled, tokens: tokens, excluding: excluding,
                heldBack: Int((tenant.contract.reservedForOtherTiers * 1000).rounded(.down))
            )
        } catch {
            return .unavailable(Self.storeUnavailable, retryAfter: nil)
        }
        switch selection {
        case .selected(let lease):
            guard let key = keys.first(where: { $0.id == lease.keyID }) else {
                await pool.release(lease, actualTokens: 0, outcome: .succeeded(nil))
                return .unavailable(Self.storeUnavailable, retryAfter: nil)
            }
            return .chosen(Choice(lease: lease, key: key))
        case .exhausted(let retryAfter?):
            // Rate limits, however long: SDKs retry a 429 after its retry-after, while a
            // 503 reads to them as a server failure.
            return .unavailable(OpenAIError(
                status: 429,
                message: "Every upstream key for this model is at its rate limit or cooling down; retry after the time in retry-after.",
                type: "rate_limit_error",
                code: "rate_limit_exceeded"
            ), retryAfter: retryAfter)
        case .exhausted(nil):
            return .unavailable(OpenAIError(
                status: 503,
                message: "No upstream key for this model can take this request: every one is disabled or too small for it.",
                type: "server_error",
                code: "provider_capacity_exhausted"
            ), retryAfter: nil)
        }
    }

    /// What a rate limit did to the key that met it.
    struct RateLimit: Sendable, Equatable {
        /// How long the key cools down: the provider's delay, else the key's default.
        var cooldown: Duration
        /// Whether the provider invited a retry after that: it named a delay or said
        /// `x-should-retry: true`, and did not say `x-should-retry: false`.
        var invitesRetry: Bool
    }

    /// Ends an attempt the provider rate-limited (429, or Anthropic's 529 overloaded): the
    /// key cools down for every replica before the request moves on.
    func reportRateLimit(_ choice: Choice, upstreamStatus: Int, failure: UpstreamFailure) async -> RateLimit {
        let key = choice.key
        let signals = failure.signals
        var capacity = ReportedCapacity(signals)
        if let retryAfter = signals.retryAfter {
            // An exhausted window without its own reset is full again when the
            // provider says to retry, not a minute later.
            if capacity?.requestsReset == nil { capacity?.requestsReset = retryAfter }
            if capacity?.tokensReset == nil { capacity?.tokensReset = retryAfter }
        }
        let outcome = KeyOutcome.rateLimited(retryAfter: signals.retryAfter, capacity)
        let applied = await pool.release(choice.lease, actualTokens: 0, outcome: outcome)
        metrics.providerKeyEvent("cooldown", provider: key.provider, keyID: key.id)
        logger.info(
            "provider key cooling down",
            metadata: ["provider": "\(key.provider)", "key": "\(key.id)", "status": "\(upstreamStatus)"]
        )
        let providerDelay = outcome.providerDelay
        return RateLimit(
            // A store that queued the release did not say; the first default is the least.
            cooldown: applied ?? providerDelay ?? KeyPoolState.shortestDefaultCooldown,
            invitesRetry: signals.shouldRetry != false && (providerDelay != nil || signals.shouldRetry == true)
        )
    }

    /// Ends an attempt that failed on the key for another reason than a rate limit:
    /// records the outcome for every replica before the request moves on to another key.
    func reportFailure(_ choice: Choice, upstreamStatus: Int, failure: UpstreamFailure) async {
        let key = choice.key
        if upstreamStatus == 401 || upstreamStatus == 403 || failure.error.code == "upstream_auth_failed" {
            let reason = "the provider answered \(upstreamStatus) at \(Date().formatted(.iso8601)): credentials rejected"
            await pool.release(choice.lease, actualTokens: 0, outcome: .rejected(reason: reason))
            metrics.providerKeyEvent("disabled", provider: key.provider, keyID: key.id)
            logger.warning(
                "provider key disabled: the provider rejected it",
                metadata: ["provider": "\(key.provider)", "key": "\(key.id)", "label": "\(key.label)", "status": "\(upstreamStatus)"]
            )
            if key.source == .catalogue {
                do {
                    let (id, entry) = (key.id, AuditEntry(
                        at: Date(), tenantID: nil, actor: .system, action: "provider_key_disabled", target: key.id,
                        payload: #"{"reason":"the provider rejected the key's credentials"}"#
                    ))
                    _ = try await directory.recording({ db in
                        try Directory.setProviderKeyState(id: id, to: .disabled, reason: reason, now: Date(), in: db)
                    }, audit: { _ in entry })
                    try await catalogue.reload()
                } catch {
                    logger.error("provider key disable could not be saved", metadata: ["key": "\(key.id)", "error": "\(error)"])
                }
            }
        } else {
            await reportFailure(choice, reason: "the provider answered \(upstreamStatus)")
        }
    }

    /// Ends an attempt whose upstream could not be reached or failed before answering.
    func reportFailure(_ choice: Choice, reason: String) async {
        await pool.release(choice.lease, actualTokens: 0, outcome: .failed(reason: reason))
        metrics.providerKeyEvent("failed", provider: choice.key.provider, keyID: choice.key.id)
    }

    static let storeUnavailable = OpenAIError(
        status: 503,
        message: "Provider key selection is temporarily unavailable; retry shortly.",
        type: "server_error",
        code: "key_pool_unavailable"
    )
}

extension ReportedCapacity {
    /// What a provider's rate-limit headers said, in the pool's terms; nil when nothing.
    init?(_ signals: RateLimitSignals) {
        let requests = signals.requests
        let tokens = signals.tokens
        guard !requests.isEmpty || !tokens.isEmpty else { return nil }
        self.init(
            remainingRequests: requests.remaining, limitRequests: requests.limit, requestsReset: requests.reset,
            remainingTokens: tokens.remaining, limitTokens: tokens.limit, tokensReset: tokens.reset
        )
    }
}
