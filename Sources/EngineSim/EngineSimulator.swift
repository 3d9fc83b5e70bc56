import Foundation
import Hummingbird
import Logging

/// A simulated OpenAI-compatible GPU inference engine that stands in for vLLM.
///
/// It paces tokens in real time, limits concurrent generations to a number of slots with a
/// FIFO queue behind them, produces deterministic text, and exposes vLLM-named Prometheus
/// metrics, so the proxy, the demo and the benchmarks can be exercised without a GPU.
///
/// Applications built from one simulator share its slots and counters, as one engine would.
public struct EngineSimulator: Sendable {
    /// How the simulated engine listens and how fast it generates.
    public struct Configuration: Sendable {
        /// Address to bind.
        public var host: String
        /// Port to bind; 0 picks an ephemeral port.
        public var port: Int
        /// Delay between a request taking a slot and its first token (the prefill).
        public var timeToFirstToken: Duration
        /// Decode rate after the first token; 0 or less emits tokens as fast as possible.
        public var tokensPerSecond: Double
        /// Requests generating at once; the rest wait in arrival order.
        public var slots: Int
        /// Completion length when the request names no `max_tokens` / `max_completion_tokens`.
        public var defaultMaxTokens: Int

        /// Creates a configuration.
        /// - Parameters:
        ///   - host: Address to bind.
        ///   - port: Port to bind; 0 picks an ephemeral port.
        ///   - timeToFirstToken: Delay before the first token of each request.
        ///   - tokensPerSecond: Decode rate; 0 or less disables pacing between tokens.
        ///   - slots: Concurrent generations; at least 1 is used.
        ///   - defaultMaxTokens: Completion length when the request gives none.
        public init(
            host: String = "127.0.0.1",
            port: Int = 8000,
            timeToFirstToken: Duration = .milliseconds(200),
            tokensPerSecond: Double = 50,
            slots: Int = 4,
            defaultMaxTokens: Int = 16
        ) {
            self.host = host
            self.port = port
            self.timeToFirstToken = timeToFirstToken
            self.tokensPerSecond = tokensPerSecond
            self.slots = slots
            self.defaultMaxTokens = defaultMaxTokens
        }
    }

    /// The model name the engine serves: listed by `/v1/models` and used as the metrics label.
    /// Requests may name any model; responses echo the name they were given.
    static let servedModelName = "engine-sim"

    let configuration: Configuration
    let logger: Logger
    let slotQueue: SlotQueue
    let metrics: SimulatorMetrics
    let pacer: TokenPacer

    /// Creates a simulator; nothing listens until the application from ``makeApplication(onServerRunning:)`` runs.
    /// - Parameters:
    ///   - configuration: Address, pacing and slots.
    ///   - logger: Logger for the HTTP server.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.slotQueue = SlotQueue(slots: max(1, configuration.slots))
        self.metrics = SimulatorMetrics()
        self.pacer = TokenPacer(
            timeToFirstToken: configuration.timeToFirstToken,
            tokensPerSecond: configuration.tokensPerSecond
        )
    }

    /// Builds the Hummingbird application. `onServerRunning` receives the bound port (useful with port 0).
    /// - Parameter onServerRunning: Called once the server listens, with the port it bound.
    /// - Returns: The application; run it with `runService()` or inside a `ServiceGroup`.
    public func makeApplication(
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: EngineRequestContext.self)
        // Added before the routes: Hummingbird wraps each route, and the not-found responder,
        // in the middleware present when it is registered.
        router.add(middleware: OpenAIErrorMiddleware())
        router.post("/v1/chat/completions") { request, context in
            try await self.chatCompletions(request, context: context)
        }
        router.post("/v1/completions") { request, context in
            try await self.completions(request, context: context)
        }
        router.post("/v1/embeddings") { request, context in
            try await self.embeddings(request, context: context)
        }
        router.get("/v1/models") { _, _ in
            self.models()
        }
        router.get("/health") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: "ok"))
            )
        }
        router.get("/metrics") { _, _ in
            let text = await self.metrics.exposition(
                modelName: Self.servedModelName,
                slots: self.slotQueue.snapshot()
            )
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
        return Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "switchyard-engine-sim"
            ),
            onServerRunning: { channel in
                await onServerRunning(channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
    }

    // MARK: Routes without a body

    /// `GET /v1/models`: the one served model, in OpenAI's list shape.
    func models() -> Response {
        let json = """
            {"object":"list","data":[{"id":\(JSONText.quoted(Self.servedModelName)),"object":"model",\
            "created":\(Self.unixTime()),"owned_by":"switchyard","root":\(JSONText.quoted(Self.servedModelName)),\
            "parent":null,"max_model_len":\(Generation.maximumTokens)}]}
            """
        return Self.jsonResponse(json)
    }

    // MARK: Shared response pieces

    static func jsonResponse(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: json))
        )
    }

    static func unixTime() -> Int {
        Int(Date().timeIntervalSince1970)
    }

    /// A response id with the given prefix (`chatcmpl-`, `cmpl-`, `embd-`), random like vLLM's.
    static func responseID(prefix: String) -> String {
        let high = String(UInt64.random(in: .min ... .max), radix: 16)
        let low = String(UInt64.random(in: .min ... .max), radix: 16)
        return prefix + high + low
    }
}

/// The request context of the simulator: raises the upload limit so long prompts fit.
struct EngineRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Long-context prompts run to megabytes; Hummingbird's default of 2 MiB is too small.
    var maxUploadSize: Int { 32 * 1024 * 1024 }
}
