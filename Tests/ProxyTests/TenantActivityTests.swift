import Billing
import Foundation
import Pools
import Testing

@testable import Proxy

@Suite("TenantActivity and TenantLabels")
struct TenantActivityTests {
    private let origin = ContinuousClock.now

    private func at(_ seconds: Int) -> ContinuousClock.Instant { origin + .seconds(seconds) }

    private func event(
        tenant: String = "t1", prompt: Int = 10, completion: Int = 20, status: Int = 200, error: String? = nil,
        streamed: Bool = true, firstByte: Int? = 100, duration: Int = 400
    ) -> UsageEvent {
        UsageEvent(
            requestID: UUID().uuidString, tenantID: tenant, tenantKeyID: nil, model: "m", deployment: "d", provider: nil,
            promptTokens: prompt, completionTokens: completion, status: status, errorType: error, startedAt: Date(),
            timeToFirstTokenMilliseconds: firstByte, durationMilliseconds: duration, streamed: streamed
        )
    }

    @Test("a request is in flight from its admission to its usage event")
    func inFlight() {
        let activity = TenantActivity(origin: origin)
        activity.started(tenant: "t1", now: at(0))
        activity.started(tenant: "t1", now: at(0))
        activity.started(tenant: "t2", now: at(0))
        #expect(activity.figures(tenant: "t1", now: at(1)).inFlight == 2)
        activity.finished(event(), now: at(1))
        let figures = activity.figures(tenant: "t1", now: at(1))
        #expect(figures.inFlight == 1)
        #expect(figures.lastMinute.requests == 1)
        #expect(activity.figures(tenant: "t2", now: at(1)).inFlight == 1)
        #expect(activity.figures(tenant: "nobody", now: at(1)) == .init(inFlight: 0, lastMinute: .init(), lastHour: .init()))
    }

    @Test("requests and tokens leave the last minute after a minute and the last hour after an hour")
    func windows() {
        let activity = TenantActivity(origin: origin)
        for second in [0, 30, 59] {
            activity.started(tenant: "t1", now: at(second))
            activity.finished(event(), now: at(second))
        }
        var figures = activity.figures(tenant: "t1", now: at(59))
        #expect(figures.lastMinute.requests == 3)
        #expect(figures.lastMinute.promptTokens == 30 && figures.lastMinute.completionTokens == 60)
        // 90 s on, only the request of second 59 is in the last minute; all are in the hour.
        figures = activity.figures(tenant: "t1", now: at(90))
        #expect(figures.lastMinute.requests == 1)
        #expect(figures.lastHour.requests == 3)
        figures = activity.figures(tenant: "t1", now: at(3_600 + 59))
        #expect(figures.lastMinute.requests == 0)
        #expect(figures.lastHour.requests == 0)
    }

    @Test("buckets reused after a lap hold only the new lap's requests")
    func bucketsAreReused() {
        let activity = TenantActivity(origin: origin)
        activity.finished(event(prompt: 1, completion: 0), now: at(0))
        // The same 5 s bucket of the minute ring, and the same minute of the hour ring, one lap on.
        activity.finished(event(prompt: 2, completion: 0), now: at(3_600))
        let figures = activity.figures(tenant: "t1", now: at(3_600))
        #expect(figures.lastMinute.promptTokens == 2)
        #expect(figures.lastHour.promptTokens == 2)
    }

    @Test("errors are counted by type, refusals before admission included, and decode time is the streamed answers' mean")
    func errorsAndDecodeTime() {
        let activity = TenantActivity(origin: origin)
        activity.finished(event(firstByte: 100, duration: 300), now: at(1))
        activity.finished(event(firstByte: 50, duration: 450), now: at(1))
        // Neither a whole answer nor an error counts towards decode time.
        activity.finished(event(streamed: false, firstByte: 900, duration: 900), now: at(1))
        activity.finished(event(completion: 0, status: 502, error: "upstream_error", firstByte: nil, duration: 20), now: at(1))
        activity.refused(tenant: "t1", errorType: "rate_limit_exceeded", now: at(2))
        activity.refused(tenant: "t1", errorType: "rate_limit_exceeded", now: at(2))
        let figures = activity.figures(tenant: "t1", now: at(2))
        #expect(figures.lastMinute.requests == 6)
        #expect(figures.lastHour.errors == ["upstream_error": 1, "rate_limit_exceeded": 2])
        #expect(figures.lastHour.meanDecodeMilliseconds == (200 + 400) / 2)
        // A refusal was never in flight.
        #expect(figures.inFlight == 0)
    }

    @Test("a tenant quiet for an hour with nothing in flight is forgotten")
    func forgetting() {
        let activity = TenantActivity(origin: origin)
        activity.finished(event(tenant: "quiet"), now: at(0))
        activity.started(tenant: "busy", now: at(0))
        activity.started(tenant: "other", now: at(3_700))
        #expect(activity.tenantCount == 2)
        #expect(activity.figures(tenant: "busy", now: at(3_700)).inFlight == 1)
    }

    @Test("the first N tenants seen get their own label, the rest share 'other'")
    func tenantLabels() {
        let labels = TenantLabels(limit: 2)
        #expect(labels.label("a") == "a")
        #expect(labels.label("b") == "b")
        #expect(labels.label("c") == "other")
        #expect(labels.label("a") == "a")
        #expect(labels.label("d") == "other")
    }

    @Test("with tenant labels, the request and token metrics name at most N tenants")
    func labelledMetrics() {
        let metrics = ProxyMetrics(tenantLabelLimit: 2)
        for tenant in ["t1", "t2", "t3", "t4", "t1"] { metrics.request(event(tenant: tenant), tier: "standard") }
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text.contains(#"switchyard_upstream_requests_total{model="m",deployment="d",status="200",tenant="t1"} 2"#), "\(text)")
        #expect(text.contains(#"switchyard_upstream_requests_total{model="m",deployment="d",status="200",tenant="t2"} 1"#))
        #expect(text.contains(#"switchyard_upstream_requests_total{model="m",deployment="d",status="200",tenant="other"} 2"#))
        #expect(text.contains(#"switchyard_tokens_total{model="m",deployment="d",kind="completion",tier="standard",tenant="other"} 40"#))
        #expect(!text.contains("t3") && !text.contains("t4"))
        // The histograms are not labelled by tenant.
        #expect(!text.contains(#"switchyard_request_duration_seconds_count{model="m",deployment="d",tenant"#))
    }

    @Test("without tenant labels, no metric names a tenant")
    func unlabelledMetrics() {
        let metrics = ProxyMetrics()
        metrics.request(event(tenant: "t1"), tier: "standard")
        let tenant = AuthenticatedTenant(
            tenantID: "t1", tenantName: "t1", keyID: "key_1", contract: Contract(tier: "standard", band: 10)
        )
        metrics.queueWait(pool: "p", tenant: tenant, .milliseconds(3))
        var buffer: [UInt8] = []
        metrics.registry.emit(into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(text.contains(#"switchyard_upstream_requests_total{model="m",deployment="d",status="200"} 1"#))
        #expect(!text.contains(#"tenant=""#), "\(text)")
    }
}
