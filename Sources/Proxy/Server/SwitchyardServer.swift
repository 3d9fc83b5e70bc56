import AsyncHTTPClient
import Billing
import Directory
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Pools
import ServiceLifecycle
import Tracing

/// Switchyard's server: the HTTP application and the services it needs, composed.
public struct SwitchyardServer: Sendable {
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        public var databasePath: String
        public var adminToken: String
        public var limits: ProxyLimits
        /// Client connection timeouts and the cap on open connections.
        public var connections: ClientConnectionOptions
        /// How long in-flight requests may run on after SIGTERM before they are cancelled.
        public var shutdownGracePeriod: Duration
        /// How long a usage event may wait before it is written.
        public var usageFlushInterval: Duration
        /// Where tenant limits are kept for all replicas (`redis://[user:pass@]host:port/db`);
        /// nil keeps them in this process.
        public var redisURL: String?
        /// What to do with tenant limits and key selection while Redis cannot be reached.
        public var redisFailurePolicy: LimitStoreFailurePolicy
        /// Seals and opens the provider keys kept in the ledger.
        public var keyCipher: ProviderKeyCipher
        /// How often the ledger is checked for provider-key changes made through another replica.
        public var keyCatalogueRefreshInterval: Duration
        /// How engine pools choose who runs.
        public var scheduling: EnginePool.Scheduling
        /// Sessions, invites and their mail.
        public var accounts: AccountSettings
        /// How often the directory is read for revocations made through another replica.
        public var revocationPollInterval: Duration
        /// Where usage events wait until they are delivered.
        public var spool: SpoolLocation
        /// Days raw usage events are kept (rollups are kept for good); nil keeps them all.
        public var retainEventsDays: Int?
        /// With Redis: whether this process also moves the usage stream into the ledger
        /// (what `switchyard meter` does), for a single replica.
        public var meterInProcess: Bool
        /// Whether the inference routes run on the data plane (else on the router).
        public var dataPlane: Bool
        /// Whether each inference request is logged (at `info`) when it is metered.
        public var accessLog: Bool
        /// Where request spans go, and the service that exports them; nil when tracing is off.
        public var tracing: TraceExport?
        /// Label the request, token and queue metrics by tenant, for at most this many
        /// tenants (the rest as `other`); nil labels no metric by tenant.
        public var metricsTenantLabelLimit: Int?

        /// A tracer and the service exporting what it records (run with the server's
        /// services, and stopped after them, so the last spans go out).
        public struct TraceExport: Sendable {
            public var tracer: any Tracer
            public var service: any Service

            public init(tracer: any Tracer, service: any Service) {
                self.tracer = tracer
                self.service = service
            }
        }
        /// A folder to serve the portal's files from, read on every request (for working on
        /// the portal); nil serves the files shipped with Switchyard.
        public var portalDirectory: String?

        /// Where a replica spools its usage events.
        public enum SpoolLocation: Sendable, Equatable {
            /// `<database>-spool/`, beside the database file.
            case besideDatabase
            case directory(String)
            /// No spool: events wait in memory, and a crash loses them (for benchmarks).
            case off
        }

        public init(
            host: String = "127.0.0.1",
            port: Int = 8080,
            databasePath: String,
            adminToken: String,
            limits: ProxyLimits = ProxyLimits(),
            connections: ClientConnectionOptions = ClientConnectionOptions(),
            shutdownGracePeriod: Duration = .seconds(30),
            usageFlushInterval: Duration = .milliseconds(250),
            redisURL: String? = nil,
            redisFailurePolicy: LimitStoreFailurePolicy = .failOpen,
            keyCipher: ProviderKeyCipher,
            keyCatalogueRefreshInterval: Duration = .seconds(1),
            scheduling: EnginePool.Scheduling = .contract,
            accounts: AccountSettings = AccountSettings(),
            revocationPollInterval: Duration = .milliseconds(250),
            spool: SpoolLocation = .besideDatabase,
            retainEventsDays: Int? = 400,
            meterInProcess: Bool = false,
            dataPlane: Bool = true,
            portalDirectory: String? = nil,
            accessLog: Bool = true,
            tracing: TraceExport? = nil,
            metricsTenantLabelLimit: Int? = nil
        ) {
            self.metricsTenantLabelLimit = metricsTenantLabelLimit
            self.accessLog = accessLog
            self.tracing = tracing
            self.host = host
            self.port = port
            self.databasePath = databasePath
            self.adminToken = adminToken
            self.limits = limits
            self.connections = connections
            self.shutdownGracePeriod = shutdownGracePeriod
            self.usageFlushInterval = usageFlushInterval
            self.redisURL = redisURL
            self.redisFailurePolicy = redisFailurePolicy
            self.keyCipher = keyCipher
            self.keyCatalogueRefreshInterval = keyCatalogueRefreshInterval
            self.scheduling = scheduling
            self.accounts = accounts
            self.revocationPollInterval = revocationPollInterval
            self.spool = spool
            self.retainEventsDays = retainEventsDays
            self.meterInProcess = meterInProcess
            self.dataPlane = dataPlane
            self.portalDirectory = portalDirectory
        }
    }

    public let options: Options
    public let topology: Topology
    /// Tenants, their keys and the provider-key catalogue.
    public let directory: Directory
    public let ledger: Ledger
    /// When tenant keys were last used, written in batches.
    public let keyUses: KeyUseRecorder
    public let usageWriter: UsageWriter
    /// The usage stream events go to, with Redis.
    let usageStream: RedisUsageStream?
    /// The Redis client, with `--redis`: `/metrics` asks it whether Redis answers.
    let redisClient: RedisClient?
    public let httpClient: HTTPClient
    public let metrics: ProxyMetrics
    /// Each tenant's live figures on this instance.
    let activity = TenantActivity()
    /// Tells requests still running when the grace period ends that it has.
    let shutdown = ServerShutdown()
    /// Tenant limits: in Redis when configured (shared by every replica), else in process.
    public let admission: any TenantAdmission
    /// Runs Redis admission's settlement queue, when Redis is configured.
    let redisService: RedisAdmissionService?
    /// The provider keys: environment variables plus the ledger's encrypted catalogue.
    public let keyCatalogue: ProviderKeyCatalogue
    /// Provider-key selection and health: in Redis when configured, else in process.
    public let keyPool: any KeyPool
    /// Carries inference requests, for both the data plane and the router.
    let pipeline: RequestPipeline
    /// Serves the inference routes on the client connections' event loops.
    let dataPlane: DataPlane
    /// The portal's files.
    let portal: PortalRoutes.Source
    let keyCipher: ProviderKeyCipher
    let tenantAuthenticator: TenantAuthenticator
    let accounts: Accounts
    let logger: Logger

    public init(configuration: SwitchyardConfiguration, environment: [String: String], options: Options, logger: Logger) throws {
        self.options = options
        self.logger = logger
        self.metrics = ProxyMetrics(tenantLabelLimit: options.metricsTenantLabelLimit)
        let redisClient = try options.redisURL.map { RedisClient(configuration: try RedisConfiguration(url: $0)) }
        self.redisClient = redisClient
        let slotLeases = redisClient.map { RedisSlotLeases(client: $0, leaseTTL: Self.keyLeaseTTL(options.limits), logger: logger) }
        self.topology = Topology(
            configuration: configuration, environment: environment, scheduling: options.scheduling, sharedSlots: slotLeases,
            logger: logger
        )
        let database = try SwitchyardDatabase(path: options.databasePath)
        self.directory = database.directory
        self.ledger = database.ledger
        let spool: UsageSpool? = switch options.spool {
        case .besideDatabase: try UsageSpool(root: options.databasePath + "-spool")
        case .directory(let path): try UsageSpool(root: path)
        case .off: nil
        }
        // With Redis, replicas hand their events to the usage stream; `switchyard meter`
        // (or a replica with `meterInProcess`) is the one writer of the ledger.
        self.usageStream = redisClient.map { RedisUsageStream(client: $0, logger: logger) }
        self.usageWriter = UsageWriter(
            sink: usageStream ?? LedgerSink(ledger: ledger), spool: spool, flushInterval: options.usageFlushInterval,
            logger: logger
        )
        self.keyUses = KeyUseRecorder(directory: directory, flushInterval: options.usageFlushInterval, logger: logger)
        let topology = self.topology
        self.tenantAuthenticator = TenantAuthenticator(directory: directory, ledger: ledger) { tenant in
            topology.contract(tier: tenant.tier, overrides: .init(tenant))
        }
        self.keyCipher = options.keyCipher
        self.accounts = try Accounts(settings: options.accounts)
        self.keyCatalogue = ProviderKeyCatalogue(
            directory: directory, cipher: options.keyCipher, environmentKeys: topology.environmentKeys, logger: logger
        )
        try keyCatalogue.loadBlocking()
        if let client = redisClient, let slotLeases {
            let redisAdmission = RedisAdmission(client: client, logger: logger)
            let redisKeyPool = RedisKeyPool(client: client, leaseTTL: Self.keyLeaseTTL(options.limits), logger: logger)
            let metrics = self.metrics
            self.admission = FailoverAdmission(
                primary: redisAdmission, policy: options.redisFailurePolicy, logger: logger,
                onFailure: { metrics.limitStoreFailure() }
            )
            self.keyPool = FailoverKeyPool(
                primary: redisKeyPool, policy: options.redisFailurePolicy, logger: logger,
                onFailure: { metrics.limitStoreFailure() }
            )
            self.redisService = RedisAdmissionService(
                admission: redisAdmission, keyPool: redisKeyPool, slotLeases: slotLeases,
                enginePools: Array(topology.enginePools.values), client: client
            )
        } else {
            self.admission = InProcessLimiter()
            self.keyPool = InProcessKeyPool(leaseTTL: Self.keyLeaseTTL(options.limits))
            self.redisService = nil
        }
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(300))
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)
        // Switchyard fails over to another replica or deployment itself; waiting out the
        // connect timeout on a refused connection would only delay that.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.decompression = .disabled
        clientConfiguration.redirectConfiguration = .disallow
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        let keys = ProviderKeys(catalogue: keyCatalogue, pool: keyPool, directory: directory, metrics: metrics, logger: logger)
        self.pipeline = RequestPipeline(
            topology: topology, httpClient: httpClient, usageWriter: usageWriter, metrics: metrics, admission: admission,
            ledger: ledger, keys: keys, limits: options.limits, shutdown: shutdown,
            accessLog: options.accessLog ? AccessLog(logger: logger) : nil,
            tracer: options.tracing?.tracer,
            activity: activity
        )
        self.dataPlane = DataPlane(pipeline: pipeline, authenticator: tenantAuthenticator, keyUses: keyUses, logger: logger)
        self.portal = PortalRoutes.source(directory: options.portalDirectory, logger: logger)
    }

    /// How long a provider-key lease counts in flight without a release: the longest an
    /// upstream request may run, and a minute more, so a drained key shows requests in
    /// flight for as long as they can really last.
    static func keyLeaseTTL(_ limits: ProxyLimits) -> Duration {
        limits.upstreamTimeout + .seconds(60)
    }

    /// The router with every route and middleware.
    public func makeRouter() -> Router<SwitchyardRequestContext> {
        // HEAD is answered wherever GET is, without a body.
        let router = Router(context: SwitchyardRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: OpenAIErrorMiddleware(metrics: metrics))
        let routes = KnownRoutes(router: router)
        routes.get("health") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        let keys = pipeline.keys
        routes.get("metrics") { [topology, usageWriter, metrics, keyCatalogue, keyPool, redisClient] _, _ in
            await metrics.refreshLiveGauges(topology: topology, catalogue: keyCatalogue, keyPool: keyPool, redis: redisClient)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(topology: topology, usageWriter: usageWriter)))
            )
        }
        InferenceController(
            pipeline: pipeline,
            topology: topology,
            keys: keys,
            authentication: TenantKeyMiddleware(authenticator: tenantAuthenticator, keyUses: keyUses)
        ).addRoutes(to: routes)
        let authenticator = ManagementAuthenticator(directory: directory, adminToken: options.adminToken, uses: keyUses)
        let admin = AdminController(
            directory: directory,
            ledger: ledger,
            topology: topology,
            tenantAuthenticator: tenantAuthenticator,
            keyCatalogue: keyCatalogue,
            keyPool: keyPool,
            admission: admission,
            cipher: keyCipher,
            authenticator: authenticator,
            accounts: accounts,
            activity: activity,
            logger: logger
        )
        admin.addRoutes(to: routes)
        AuthController(directory: directory, accounts: accounts, authenticator: authenticator, admin: admin).addRoutes(to: routes)
        PortalRoutes(source: portal).addRoutes(to: routes)
        routes.addMethodNotAllowedAnswers()
        return router
    }

    /// The HTTP application. `onServerRunning` receives the bound port.
    public func makeApplication(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        // Inference requests on the data plane, every other request on the router, on one port.
        let connections = options.connections
        let handlerConfiguration = ClientConnectionHandler.Configuration(
            timeouts: .init(
                header: .init(connections.headerTimeout),
                body: .init(connections.bodyTimeout),
                keepAlive: .init(connections.keepAliveTimeout),
                send: .init(connections.sendTimeout)
            ),
            maximumBodyBytes: options.limits.maximumRequestBodyBytes
        )
        let (metrics, logger) = (self.metrics, self.logger)
        let dataPlane = options.dataPlane ? self.dataPlane : nil
        return Application(
            router: makeRouter(),
            server: HTTPServerBuilder { responder in
                ClientChannel(
                    responder: responder, configuration: handlerConfiguration, dataPlane: dataPlane, metrics: metrics, logger: logger
                )
            },
            configuration: .init(
                address: .hostname(options.host, port: options.port),
                serverName: nil,
                availableConnectionsDelegate: ConnectionLimit(
                    maximum: connections.maximumConnections, metrics: metrics, logger: logger
                )
            ),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// Runs until SIGTERM or SIGINT: then stops accepting, lets in-flight requests and
    /// streams finish within the grace period, ends those still open with a final
    /// `shutting_down` error event (metered as such), writes pending usage, and returns.
    public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let (shutdown, httpClient, logger) = (self.shutdown, self.httpClient, self.logger)
        let dataPlane = self.dataPlane
        let application = GracePeriodService(
            service: makeApplication(onServerRunning: onServerRunning),
            gracePeriod: options.shutdownGracePeriod,
            onShutdown: { shutdown.shutdownBegan() }
        ) {
            logger.warning("the grace period is over: ending the requests still open")
            shutdown.deadlinePassed()
            dataPlane.closeUpstreams()
            // Every upstream request fails at once; each open stream then ends with its
            // final error event and is metered, and the connections close.
            try? await httpClient.shutdown()
        }
        let catalogueService = ProviderKeyCatalogueService(
            catalogue: keyCatalogue, interval: options.keyCatalogueRefreshInterval, logger: logger
        )
        let webhooks = WebhookDispatcher(ledger: ledger, httpClient: httpClient, cipher: keyCipher, logger: logger)
        let revocations = RevocationFollower(
            directory: directory, authenticator: tenantAuthenticator, interval: options.revocationPollInterval, logger: logger
        )
        let metering = try makeMetering()
        var configuration = ServiceGroupConfiguration(
            // Shut down in reverse: the application drains first, then usage events are
            // delivered (to the stream while the Redis client is still open), then Redis
            // settlements are sent, and last an in-process meter stores what the stream holds.
            services: (options.tracing.map { [.init(service: $0.service)] } ?? []) + metering.services + [.init(service: keyUses)] + (redisService.map { [.init(service: $0)] } ?? [])
                + [.init(service: usageWriter), .init(service: catalogueService), .init(service: webhooks),
                   .init(service: revocations), .init(service: application)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: logger
        )
        // A backstop only: the application ends its own requests at the grace period.
        configuration.maximumGracefulShutdownDuration = options.shutdownGracePeriod + .seconds(15)
        let group = ServiceGroup(configuration: configuration)
        do {
            try await group.run()
        } catch {
            try? await httpClient.shutdown()
            await metering.stop()
            throw error
        }
        // Already shut down when the grace period ran out.
        try? await httpClient.shutdown()
        await metering.stop()
    }
}
