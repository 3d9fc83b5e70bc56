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
        var queuePosition: Int?
        /// When that request is predicted to start, from now.
        var predictedStartMs: Int?
        /// How long it has waited so far.
        var queuedForMs: Int?
        /// The pool it waits for.
        var queuePool: String?
        /// Mean time from first byte to end of the last hour's streamed answers.
        var decodeTimeMs: Int?
        var lastMinute: Window
        var lastHour: Window

        struct Window: Encodable, Sendable {
            var requests: Int
            var promptTokens: Int
            var completionTokens: Int
            var totalTokens: Int
            /// Requests that ended in an error, by type.
            var errors: [String: Int]
            var decodeTimeMs: Int?

            init(_ tally: TenantActivity.Tally) {
                requests = tally.requests
                promptTokens = tally.promptTokens
                completionTokens = tally.completionTokens
                totalTokens = tally.promptTokens + tally.completionTokens
                errors = tally.errors
                decodeTimeMs = tally.meanDecodeMilliseconds
            }

            private enum CodingKeys: String, CodingKey {
                case requests, promptTokens, completionTokens, totalTokens, errors, decodeTimeMs
            }

            /// Without a decoded answer, `decode_time_ms` is `null`, not left out.
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(requests, forKey: .requests)
                try container.encode(promptTokens, forKey: .promptTokens)
                try container.encode(completionTokens, forKey: .completionTokens)
                try container.encode(totalTokens, forKey: .totalTokens)
                try container.encode(errors, forKey: .errors)
                try container.encode(decodeTimeMs, forKey: .decodeTimeMs)
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

        private enum CodingKeys: String, CodingKey {
            case object, tenantId, inFlight, queued, queuePosition, predictedStartMs, queuedForMs, queuePool
            case decodeTimeMs, lastMinute, lastHour
        }

        /// What is unknown (nothing waits, nothing decoded) is `null`, not left out.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(object, forKey: .object)
            try container.encode(tenantId, forKey: .tenantId)
            try container.encode(inFlight, forKey: .inFlight)
            try container.encode(queued, forKey: .queued)
            try container.encode(queuePosition, forKey: .queuePosition)
            try container.encode(predictedStartMs, forKey: .predictedStartMs)
            try container.encode(queuedForMs, forKey: .queuedForMs)
            try container.encode(queuePool, forKey: .queuePool)
            try container.encode(decodeTimeMs, forKey: .decodeTimeMs)
            try container.encode(lastMinute, forKey: .lastMinute)
            try container.encode(lastHour, forKey: .lastHour)
        }
    }
}
