import Directory
import AsyncHTTPClient
@testable import Billing
import Crypto
import EngineSim
import Foundation
import GRDB
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@testable import Proxy

/// A running Switchyard on port 0 in front of two real engine simulators (one unpaced,
/// one slow enough to abort mid-stream), with a real SQLite file in a temp folder.
struct LiveHarness: Sendable {
    static let adminToken = "test-admin-token-0123456789"

    let baseURL: String
    let slowEngineURL: String
    let server: SwitchyardServer
    var ledger: Ledger { server.ledger }
    var directory: Directory { server.directory }

    /// Runs `body` against a fresh deployment and tears it all down afterwards.
    static func run(
        maximumRequestBodyBytes: Int = 8 << 20,
        dataPlane: Bool = true,
        _ body: @Sendable (LiveHarness) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchyard-tests-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "ProxyTests")
        logger.logLevel = .warning
        let fast = simulator(tokensPerSecond: 0, logger: logger)
        let slow = simulator(tokensPerSecond: 20, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await fast.group.run() }
            group.addTask { try await slow.group.run() }
            var fastPorts = fast.ports.makeAsyncIterator()
            var slowPorts = slow.ports.makeAsyncIterator()
            let fastPort = try #require(await fastPorts.next())
            let slowPort = try #require(await slowPorts.next())
            var failure: (any Error)?
            do {
                let configuration = try SwitchyardConfiguration.parse(Data(configurationJSON(fastPort: fastPort, slowPort: slowPort).utf8))
                let server = try SwitchyardServer(
                    configuration: configuration,
                    environment: [:],
                    options: .init(
                        host: "127.0.0.1",
                        port: 0,
                        databasePath: directory.appendingPathComponent("switchyard.sqlite").path,
                        adminToken: adminToken,
                        limits: ProxyLimits(maximumRequestBodyBytes: maximumRequestBodyBytes),
                        usageFlushInterval: .milliseconds(50),
                        keyCipher: ProviderKeyCipher(masterKey: SymmetricKey(size: .bits256)),
                        dataPlane: dataPlane
                    ),
                    logger: logger
                )
                let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
                let switchyard = ServiceGroup(configuration: .init(
                    services: [server.usageWriter, server.keyUses, server.makeApplication { continuation.yield($0) }],
                    logger: logger
                ))
                group.addTask { try await switchyard.run() }
                var iterator = ports.makeAsyncIterator()
                let port = try #require(await iterator.next())
                do {
                    try await body(LiveHarness(baseURL: "http://127.0.0.1:\(port)", slowEngineURL: "http://127.0.0.1:\(slowPort)", server: server))
                } catch {
                    failure = error
                }
                await switchyard.triggerGracefulShutdown()
                try await server.httpClient.shutdown()
            } catch {
                failure = failure ?? error
            }
            await fast.group.triggerGracefulShutdown()
            await slow.group.triggerGracefulShutdown()
            try await group.waitForAll()
            if let failure { throw failure }
        }
    }

    /// An engine simulator on port 0 in its own service group, and the stream that
    /// delivers its port once it listens.
    private static func simulator(tokensPerSecond: Double, logger: Logger) -> (group: ServiceGroup, ports: AsyncStream<Int>) {
        let simulator = EngineSimulator(
            configuration: .init(port: 0, timeToFirstToken: .zero, tokensPerSecond: tokensPerSecond, slots: 4),
            logger: logger
        )
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let group = ServiceGroup(configuration: .init(services: [simulator.makeApplication { continuation.yield($0) }], logger: logger))
        return (group, ports)
    }

    static func configurationJSON(fastPort: Int, slowPort: Int) -> String {
        """
        {
          "providers": [
            { "id": "sim", "kind": "engine", "engine_pool": "fast" },
            { "id": "slow-sim", "kind": "engine", "engine_pool": "slow" },
            { "id": "dead", "kind": "engine", "engine_pool": "dead" },
            { "id": "half-dead", "kind": "engine", "engine_pool": "half-dead" }
          ],
          "engine_pools": [
            { "id": "fast", "cost_per_hour": 3600000, "replicas": [{ "url": "http://127.0.0.1:\(fastPort)/v1", "slots": 4 }] },
            { "id": "slow", "replicas": [{ "url": "http://127.0.0.1:\(slowPort)/v1", "slots": 4 }] },
            { "id": "dead", "replicas": [{ "url": "http://127.0.0.1:1/v1", "slots": 1 }] },
            { "id": "half-dead", "replicas": [{ "url": "http://127.0.0.1:1/v1", "slots": 1 }, { "url": "http://127.0.0.1:\(fastPort)/v1", "slots": 1 }] }
          ],
          "deployments": [
            { "id": "sim-llama", "provider": "sim", "model": "upstream-llama" },
            { "id": "sim-embed", "provider": "sim", "model": "upstream-embed" },
            { "id": "slow-llama", "provider": "slow-sim", "model": "upstream-slow" },
            { "id": "dead-llama", "provider": "dead", "model": "upstream-dead" },
            { "id": "capped-llama", "provider": "sim", "model": "upstream-capped", "max_output_tokens": 100 },
            { "id": "half-dead-llama", "provider": "half-dead", "model": "upstream-half-dead" }
          ],
          "models": [
            { "name": "chat-small", "routes": ["sim-llama"] },
            { "name": "chat-fallback", "routes": ["dead-llama", "sim-llama"] },
            { "name": "chat-dead", "routes": ["dead-llama"] },
            { "name": "chat-slow", "routes": ["slow-llama"] },
            { "name": "embed-small", "routes": ["sim-embed"] },
            { "name": "chat-capped", "routes": ["capped-llama", "sim-llama"] },
            { "name": "chat-capped-only", "routes": ["capped-llama"] },
            { "name": "chat-half-dead", "routes": ["half-dead-llama"] }
          ],
          "prices": {
            "sim-llama": { "input_per_million": 1000000, "cached_input_per_million": 500000, "output_per_million": 2000000 }
          },
          "tiers": [
            { "name": "enterprise", "priority": 100 },
            { "name": "standard", "priority": 10, "models": ["chat-small"] },
            { "name": "three-per-minute", "priority": 10, "requests_per_minute": 3 },
            { "name": "one-at-a-time", "priority": 10, "concurrent_requests": 1 },
            { "name": "two-hundred-tokens", "priority": 10, "tokens_per_minute": 200 }
          ]
        }
        """
    }
}

// MARK: - Requests

struct LiveResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer

    var text: String { String(buffer: body) }

    func json() throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any], "not a JSON object: \(text)")
    }

    /// The `error` object of an OpenAI-shaped error body.
    func error() throws -> [String: Any] {
        try #require(try json()["error"] as? [String: Any], "not an OpenAI error: \(text)")
    }

    /// The `data:` payloads of an SSE body.
    var events: [String] {
        text.components(separatedBy: "\n\n").compactMap { event in
            event.hasPrefix("data: ") ? String(event.dropFirst(6)) : nil
        }
    }
}

extension LiveHarness {
    func send(_ path: String, body: String? = nil, bytes: [UInt8]? = nil, bearer: String? = nil) async throws -> LiveResponse {
        try await send(.POST, path, body: body, bytes: bytes, bearer: bearer)
    }

    func send(
        _ method: HTTPMethod,
        _ path: String,
        body: String? = nil,
        bytes: [UInt8]? = nil,
        bearer: String? = nil
    ) async throws -> LiveResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let bearer { request.headers.add(name: "authorization", value: "Bearer \(bearer)") }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        } else if let bytes {
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        return LiveResponse(status: Int(response.status.code), headers: response.headers, body: try await response.body.collect(upTo: 16 << 20))
    }

    func admin(_ method: HTTPMethod, _ path: String, body: String? = nil, token: String = adminToken) async throws -> LiveResponse {
        try await send(method, path, body: body, bearer: token)
    }

    /// Creates a tenant, an org admin of it, and a key of theirs through the management API.
    func makeTenant(name: String = "acme-\(UUID().uuidString.prefix(8))", tier: String = "enterprise") async throws -> (tenantID: String, keyID: String, key: String) {
        let tenant = try await admin(.POST, "/admin/v1/tenants", body: #"{"name":"\#(name)","tier":"\#(tier)"}"#)
        #expect(tenant.status == 201, "\(tenant.text)")
        let tenantID = try #require(try tenant.json()["id"] as? String)
        let session = try await signUp(tenantID: tenantID)
        let key = try await admin(.POST, "/admin/v1/tenants/\(tenantID)/keys", body: #"{"name":"test-app"}"#, token: session)
        #expect(key.status == 201, "\(key.text)")
        let object = try key.json()
        return (tenantID, try #require(object["id"] as? String), try #require(object["key"] as? String))
    }

    /// Invites a user to the tenant (as the admin token), accepts the invite, and returns
    /// the new user's session token.
    func signUp(tenantID: String, role: String = "org_admin", email: String = "\(UUID().uuidString.prefix(12))@example.com") async throws -> String {
        let invite = try await admin(.POST, "/admin/v1/tenants/\(tenantID)/invites", body: #"{"email":"\#(email)","role":"\#(role)"}"#)
        #expect(invite.status == 201, "\(invite.text)")
        let token = try #require(try invite.json()["token"] as? String)
        let accepted = try await send(.POST, "/auth/invites/\(token)/accept", body: #"{"name":"Test User","password":"correct horse battery"}"#)
        #expect(accepted.status == 201, "\(accepted.text)")
        return try #require(try accepted.json()["token"] as? String)
    }

    /// Waits (bounded, 10 s) until the slow engine reports `running` requests in its slots.
    func waitForSlowEngine(running expected: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        var running = -1
        while ContinuousClock.now < deadline {
            var metricsRequest = HTTPClientRequest(url: slowEngineURL + "/metrics")
            metricsRequest.method = .GET
            let metrics = try await HTTPClient.shared.execute(metricsRequest, timeout: .seconds(5))
            let text = String(buffer: try await metrics.body.collect(upTo: 1 << 20))
            running = text.split(separator: "\n")
                .first { $0.hasPrefix("vllm:num_requests_running") }
                .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
                .map { Int($0) } ?? -1
            if running == expected { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the slow engine has \(running) requests running, not \(expected), after 10 s")
    }

    /// Waits (bounded) for the one usage event of a model, when the request id is unknown.
    func awaitOnlyUsageEvent(model: String, within limit: Duration = .seconds(10)) async throws -> UsageEvent {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let events = try await ledger.pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM usage_events WHERE model = ?", arguments: [model]).map(Ledger.usageEvent(from:))
            }
            if let event = events.first {
                // A second event would come within a few flushes (50 ms each).
                try await Task.sleep(for: .milliseconds(300))
                let again = try await ledger.pool.read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM usage_events WHERE model = ?", arguments: [model]) ?? 0
                }
                #expect(again == 1, "the request was metered \(again) times")
                return event
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no usage event for \(model) within \(limit)")
        throw CancellationError()
    }

    /// Waits (bounded) until the usage event of `requestID` is in the ledger.
    func usageEvent(requestID: String, within limit: Duration = .seconds(10)) async throws -> UsageEvent {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let event = try await ledger.usageEvent(requestID: requestID) { return event }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no usage event for \(requestID) within \(limit)")
        throw CancellationError()
    }
}

func chatBody(model: String = "chat-small", content: String = "Say hello to Switchyard", stream: Bool = false, includeUsage: Bool? = nil, maxTokens: Int = 8) -> String {
    var body = #"{"model":"\#(model)","messages":[{"role":"user","content":"\#(content)"}],"max_tokens":\#(maxTokens)"#
    if stream { body += #","stream":true"# }
    if let includeUsage { body += #","stream_options":{"include_usage":\#(includeUsage)}"# }
    return body + "}"
}
