import AsyncHTTPClient
import Foundation
import NIOCore
import Providers
import Testing

@testable import Proxy

@Suite("Tenant limits, in process")
struct TenantLimitTests {
    @Test func requestsPerMinuteRefuseTheFourthWith429AndRetryAfter() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant(tier: "three-per-minute")
            var remaining: [String] = []
            for _ in 0..<3 {
                let response = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
                #expect(response.status == 200)
                #expect(response.headers.first(name: "x-ratelimit-limit-requests") == "3")
                remaining.append(response.headers.first(name: "x-ratelimit-remaining-requests") ?? "")
            }
            #expect(remaining == ["2", "1", "0"])
            let refused = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            #expect(refused.status == 429)
            let error = try refused.error()
            #expect(error["code"] as? String == "rate_limit_exceeded")
            #expect(error["type"] as? String == "requests")
            let retryAfter = try #require(refused.headers.first(name: "retry-after").flatMap { Int($0) })
            #expect(retryAfter >= 1 && retryAfter <= 20, "one request refills in 20 s")
            #expect(refused.headers.first(name: "x-ratelimit-remaining-requests") == "0")
            #expect(refused.headers.first(name: "x-request-id") != nil)

            // Another tenant of the same tier has its own buckets.
            let other = try await harness.makeTenant(tier: "three-per-minute")
            #expect(try await harness.send("/v1/chat/completions", body: chatBody(), bearer: other.key).status == 200)
        }
    }

    @Test func concurrencyLimitRefusesWhileAStreamRunsAndFreesWhenItEnds() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant(tier: "one-at-a-time")
            var request = HTTPClientRequest(url: harness.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(tenant.key)")
            request.body = .bytes(ByteBuffer(string: chatBody(model: "chat-slow", stream: true, maxTokens: 400)))
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let response = try await client.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            var iterator = response.body.makeAsyncIterator()
            _ = try await iterator.next()

            let refused = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key)
            #expect(refused.status == 429)
            #expect(try refused.error()["message"] as? String ?? "" != "")
            #expect((try refused.error()["message"] as? String ?? "").contains("concurrent requests"))

            // The client leaves: the request is metered and settled, and the slot frees.
            try await client.shutdown()
            let deadline = ContinuousClock.now + .seconds(10)
            var status = 0
            while ContinuousClock.now < deadline {
                status = try await harness.send("/v1/chat/completions", body: chatBody(), bearer: tenant.key).status
                if status == 200 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(status == 200)
        }
    }

    @Test func tokensPerMinuteReserveMaxTokensAndGiveBackWhatWasNotUsed() async throws {
        try await LiveHarness.run { harness in
            let tenant = try await harness.makeTenant(tier: "two-hundred-tokens")
            let tooLarge = try await harness.send("/v1/chat/completions", body: chatBody(maxTokens: 500), bearer: tenant.key)
            #expect(tooLarge.status == 429)
            #expect(try tooLarge.error()["type"] as? String == "tokens")
            #expect(tooLarge.headers.first(name: "retry-after") == nil, "it can never fit, so no retry-after")

            let body = chatBody(maxTokens: 50)
            let reservation = TokenUsage.estimateTokens(byteCount: body.utf8.count) + 50
            let first = try await harness.send("/v1/chat/completions", body: body, bearer: tenant.key)
            #expect(first.status == 200)
            #expect(first.headers.first(name: "x-ratelimit-limit-tokens") == "200")
            #expect(first.headers.first(name: "x-ratelimit-remaining-tokens") == String(200 - reservation))
            let usage = try #require(try first.json()["usage"] as? [String: Any])
            let used = try #require(usage["prompt_tokens"] as? Int) + (try #require(usage["completion_tokens"] as? Int))
            _ = try await harness.usageEvent(requestID: try #require(first.headers.first(name: "x-request-id")))

            let second = try await harness.send("/v1/chat/completions", body: body, bearer: tenant.key)
            let remaining = try #require(second.headers.first(name: "x-ratelimit-remaining-tokens").flatMap { Int($0) })
            // The first request was charged what it used, not what it reserved (a little
            // may have refilled meanwhile: 200 a minute is 3.3 a second).
            #expect(remaining >= 200 - used - reservation)
            #expect(remaining <= 200 - used - reservation + 4)
        }
    }
}
