import Foundation
import Pools

/// `GET /admin/v1/tenants/{id}/metrics`: the tenant's live figures on the instance that
/// answers — requests, tokens, errors and decode time of the last minute and hour, what it
/// has in flight and waiting, and where its longest-waiting request stands in line.
extension AdminController {
    func addTenantMetricsRoutes(to admin: ManagementRoutes) {
        admin.get("tenants/:id/metrics", .tenant(.viewTenantUsage)) { _, context in
            let tenant = try await requireTenant(context)
            return try json(tenantMetrics(tenant.id))
        }
    }

    func tenantMetrics(_ tenantID: String, now: ContinuousClock.Instant = .now) -> AdminResources.TenantMetricsBody {
        let figures = activity.figures(tenant: tenantID, now: now)
        var queued = 0
        var oldest: (pool: String, line: EnginePool.TenantLine)?
        for (name, pool) in topology.enginePools.sorted(by: { $0.key < $1.key }) {
            let line = pool.line(of: tenantID, now: now)
            queued += line.waiting
            guard let waited = line.oldestWaited else { continue }
            if let found = oldest?.line.oldestWaited, found >= waited { continue }
            oldest = (name, line)
        }
        return AdminResources.TenantMetricsBody(
            tenantId: tenantID, figures: figures, queued: queued, oldestPool: oldest?.pool, oldest: oldest?.line
        )
    }
}

extension AdminResources {
    /// A tenant's live figures on one instance.
    struct TenantMetricsBody: Encodable, Sendable {
        var object = "tenant.metrics"
        var tenantId: String
        /// Requests being served: admitted, not waiting for an engine slot, not ended.
        var inFlight: Int
        /// Requests waiting for an engine slot, in every pool.
        var queued: Int
        /// The longest-waiting request's place in its pool's line (1: the next slot freed).
        @NullEncoded var queuePosition: Int?
        /// When that request is predicted to start, from now.
        @NullEncoded var predictedStartMs: Int?
        /// How long it has waited so far.
        @NullEncoded var queuedForMs: Int?
        /// The pool it waits for.
        @NullEncoded var queuePool: String?
        /// Mean time from first byte to end of the last hour's streamed answers.
        @NullEncoded var decodeTimeMs: Int?
        var lastMinute: Window
        var lastHour: Window

        struct Window: Encodable, Sendable {
            var requests: Int
            var promptTokens: Int
            var completionTokens: Int
            var totalTokens: Int
            /// Requests that ended in an error, by type.
            var errors: [String: Int]
            @NullEncoded var decodeTimeMs: Int?

            init(_ tally: TenantActivity.Tally) {
                requests = tally.requests
                promptTokens = tally.promptTokens
                completionTokens = tally.completionTokens
                totalTokens = tally.promptTokens + tally.completionTokens
                errors = tally.errors
                decodeTimeMs = tally.meanDecodeMilliseconds
            }
        }

        init(
            tenantId: String, figures: TenantActivity.Figures, queued: Int, oldestPool: String?, oldest: EnginePool.TenantLine?
        ) {
            self.tenantId = tenantId
            // The activity counts a request from its admission; one waiting for a slot is queued.
            inFlight = max(0, figures.inFlight - queued)
            self.queued = queued
            queuePosition = oldest?.oldestPosition
            predictedStartMs = oldest?.predictedStart.map(\.wholeMilliseconds)
            queuedForMs = oldest?.oldestWaited.map(\.wholeMilliseconds)
            queuePool = oldestPool
            decodeTimeMs = figures.lastHour.meanDecodeMilliseconds
            lastMinute = Window(figures.lastMinute)
            lastHour = Window(figures.lastHour)
        }
    }
}
