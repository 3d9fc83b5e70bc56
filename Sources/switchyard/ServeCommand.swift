import ArgumentParser
import Billing
import Foundation
import Logging
import OTel
import Pools
import Proxy

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the proxy.",
        discussion: """
            Each option can also be set by an environment variable: SWITCHYARD_CONFIG, SWITCHYARD_DB, \
            SWITCHYARD_HOST, SWITCHYARD_PORT. The admin token comes from SWITCHYARD_ADMIN_TOKEN or, when that \
            is unset, from a 0600 file beside the database (created and printed once on first start).
            """
    )

    @Option(help: "The configuration file (env SWITCHYARD_CONFIG).")
    var config: String?

    @Option(help: "The SQLite database file (env SWITCHYARD_DB).")
    var db: String?

    @Option(help: "The address to listen on (env SWITCHYARD_HOST).")
    var host: String?

    @Option(help: "The port to listen on (env SWITCHYARD_PORT).")
    var port: Int?

    @Option(help: "Seconds in-flight requests may run on after SIGTERM.")
    var gracePeriod: Int = 30

    @Option(help: "Largest accepted request body, in bytes.")
    var maxBodyBytes: Int = 8 << 20

    @Option(help: "Seconds a client has to send a request's whole head, from its first byte or from connecting.")
    var headerTimeout: Int = 15

    @Option(help: "Longest pause, in seconds, between two reads of a request body (a longer one is a 408).")
    var bodyTimeout: Int = 30

    @Option(help: "Seconds a client connection may idle between requests.")
    var keepAliveTimeout: Int = 60

    @Option(help: "Seconds a client may read nothing of an answer before its connection is closed.")
    var sendTimeout: Int = 60

    @Option(help: "Client connections open at once; beyond it new ones wait to be accepted.")
    var maxConnections: Int = 10_000

    @Option(help: "Keep tenant limits in Redis, shared by every replica: redis://[user:pass@]host:port/db (env SWITCHYARD_REDIS_URL).")
    var redis: String?

    @Option(help: "While Redis is unreachable: 'open' keeps serving on this process's own limits, 'closed' answers 503 (env SWITCHYARD_REDIS_FAILURE).")
    var redisFailure: String?

    @Option(help: "How engine pools choose who runs: 'contract' (bands, fair share, reserved shares) or 'fifo' (first come, first served in the engine's own queue; for comparison).")
    var scheduling: String = "contract"

    @Option(help: "The URL people reach Switchyard at, for the links in invites (env SWITCHYARD_PUBLIC_URL; default: the Host the inviter used).")
    var publicURL: String?

    @Option(help: "Hours a sign-in session lasts.")
    var sessionHours: Int = 12

    @Flag(help: "With --redis: also move the usage stream into the ledger in this process (what `switchyard meter` does), for a single replica or to be the one meter.")
    var meter = false

    @Option(help: "Days raw usage events are kept in the ledger (hourly rollups are kept for good); pruned by the process that writes the ledger: this one without --redis or with --meter, else `switchyard meter`.")
    var retainEventsDays: Int = 400

    @Flag(inversion: .prefixedNo, help: "Serve the inference routes on the data plane (SwiftNIO channel handlers on the connection's event loop); --no-data-plane serves them on the Hummingbird router instead, as a fallback.")
    var dataPlane = true

    @Option(help: "Where usage events wait until delivered: a directory, or 'off' to hold them in memory only, which loses them on a crash (for benchmarks). Default: <db>-spool beside the database.")
    var spool: String?

    @Option(help: "How log lines are written on standard output: 'json' (one object per line, for log stores) or 'text'. Default: text on a terminal, json otherwise.")
    var logFormat: SwitchyardLogHandler.Format?

    @Option(help: "'on' logs one line per inference request (at info) as it is metered; 'off' does not.")
    var accessLog: Switch = .on

    @Option(help: "Export traces over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (env OTEL_EXPORTER_OTLP_ENDPOINT; spans go to <endpoint>/v1/traces). Default: no tracing.")
    var otlpEndpoint: String?

    @Option(help: "The share of requests traced, from 0 to 1 (a request whose caller's traceparent says sampled or not is traced as it says).")
    var traceSampling: Double = 1.0

    @Flag(help: "Add a `tenant` label to the request, token and queue metrics on /metrics, for at most --metrics-tenant-limit tenants (the rest as tenant=\"other\"). Default: no metric is labelled by tenant.")
    var metricsTenantLabels = false

    @Option(help: "With --metrics-tenant-labels: the most tenants labelled by their id, the first seen since start; later ones fold into tenant=\"other\".")
    var metricsTenantLimit: Int = 100

    @Option(help: "Serve the portal's files from this folder, read on every request, instead of the ones built in (env SWITCHYARD_PORTAL_DIR; for working on the portal).")
    var portalDir: String?

    func validate() throws {
        guard EnginePool.Scheduling(rawValue: scheduling) != nil else {
            throw ValidationError("--scheduling must be 'contract' or 'fifo', not '\(scheduling)'.")
        }
        guard gracePeriod >= 0, gracePeriod <= 86_400 else {
            throw ValidationError("--grace-period must be from 0 to 86400 seconds, not \(gracePeriod).")
        }
        guard maxBodyBytes >= 1, maxBodyBytes <= 1 << 30 else {
            throw ValidationError("--max-body-bytes must be from 1 to 1073741824, not \(maxBodyBytes).")
        }
        for (name, value) in [("--header-timeout", headerTimeout), ("--body-timeout", bodyTimeout), ("--keep-alive-timeout", keepAliveTimeout), ("--send-timeout", sendTimeout)] {
            guard (1...3600).contains(value) else { throw ValidationError("\(name) must be from 1 to 3600 seconds, not \(value).") }
        }
        guard (1...720).contains(sessionHours) else {
            throw ValidationError("--session-hours must be from 1 to 720, not \(sessionHours).")
        }
        guard (1...1_000_000).contains(maxConnections) else {
            throw ValidationError("--max-connections must be from 1 to 1000000, not \(maxConnections).")
        }
        guard (1...36_500).contains(retainEventsDays) else {
            throw ValidationError("--retain-events-days must be from 1 to 36500, not \(retainEventsDays).")
        }
        guard (0...1).contains(traceSampling) else {
            throw ValidationError("--trace-sampling must be from 0 to 1, not \(traceSampling).")
        }
        guard (1...10_000).contains(metricsTenantLimit) else {
            throw ValidationError("--metrics-tenant-limit must be from 1 to 10000, not \(metricsTenantLimit).")
        }
        if let spool, spool.isEmpty {
            throw ValidationError("--spool must be a directory or 'off', not empty.")
        }
    }

    /// Where the usage writer spools, from `--spool`.
    private var spoolLocation: SwitchyardServer.Options.SpoolLocation {
        switch spool {
        case nil: .besideDatabase
        case "off": .off
        case let path?: .directory(path)
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let configPath = config ?? environment["SWITCHYARD_CONFIG"] ?? "providers.json"
        let databasePath = db ?? environment["SWITCHYARD_DB"] ?? "var/switchyard.sqlite"
        let host = host ?? environment["SWITCHYARD_HOST"] ?? "127.0.0.1"
        let portText = port.map(String.init) ?? environment["SWITCHYARD_PORT"] ?? "8080"
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw ValidationError("The port must be a number from 0 to 65535, not '\(portText)'.")
        }
        bootstrapLogging(format: logFormat, environment: environment)
        defer { LogOutput.standardOutput.flush() }
        let logger = makeLogger(environment: environment)
        let redisURL = redis ?? environment["SWITCHYARD_REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        let failureText = redisFailure ?? environment["SWITCHYARD_REDIS_FAILURE"] ?? "open"
        guard let failurePolicy = LimitStoreFailurePolicy(rawValue: failureText) else {
            throw ValidationError("--redis-failure must be 'open' or 'closed', not '\(failureText)'.")
        }
        if let redisURL {
            do {
                _ = try RedisConfiguration(url: redisURL)
            } catch {
                FileHandle.standardError.write(Data("switchyard: --redis: \(error)\n".utf8))
                throw ExitCode(2)
            }
        } else if meter {
            FileHandle.standardError.write(Data(
                "switchyard: --meter needs --redis (or SWITCHYARD_REDIS_URL): it moves the usage stream in Redis into the ledger; without Redis this process writes the ledger itself\n".utf8
            ))
            throw ExitCode(2)
        }

        let smtpURL = environment["SWITCHYARD_SMTP_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let smtpURL {
            do {
                _ = try SMTPConfiguration(url: smtpURL)
            } catch {
                FileHandle.standardError.write(Data("switchyard: SWITCHYARD_SMTP_URL: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }

        let configuration: SwitchyardConfiguration
        do {
            configuration = try SwitchyardConfiguration.load(path: configPath)
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(configPath): \(error)\n".utf8))
            throw ExitCode(2)
        }
        let (token, created) = try AdminToken.resolve(environment: environment, databasePath: databasePath)
        if created {
            let path = AdminToken.filePath(forDatabase: databasePath)
            AdminToken.announce(token, savedTo: path)
        }
        for file in PrivateFiles.exposedDatabaseFiles(databasePath) {
            logger.warning(
                "the ledger file is readable by other users; it holds tenants, key hashes and usage (chmod 600 it)",
                metadata: ["file": "\(file.path)", "mode": "\(String(file.mode, radix: 8))"]
            )
        }
        let descriptors = FileDescriptorLimit.raiseToHardLimit()
        let connections = FileDescriptorLimit.connectionsWithin(descriptors, requested: maxConnections)
        if connections < maxConnections {
            logger.warning(
                "--max-connections lowered to what the file-descriptor limit allows (each connection may hold an upstream one too)",
                metadata: ["max_connections": "\(connections)", "nofile": "\(descriptors)"]
            )
        }
        let keyCipher: ProviderKeyCipher
        do {
            let (cipher, createdKeyFile) = try ProviderKeyCipher.resolve(environment: environment, databasePath: databasePath)
            keyCipher = cipher
            if createdKeyFile {
                logger.notice(
                    "generated the master key that encrypts provider keys; back it up with the database",
                    metadata: ["file": "\(ProviderKeyCipher.filePath(forDatabase: databasePath))"]
                )
            }
        } catch {
            FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let tracing: SwitchyardServer.Options.TraceExport?
        do {
            tracing = try makeTraceExport(
                endpoint: otlpEndpoint ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }, logger: logger
            )
        } catch {
            FileHandle.standardError.write(Data("switchyard: --otlp-endpoint: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let server = try SwitchyardServer(
            configuration: configuration,
            environment: environment,
            options: .init(
                host: host,
                port: port,
                databasePath: databasePath,
                adminToken: token,
                limits: ProxyLimits(maximumRequestBodyBytes: maxBodyBytes),
                connections: ClientConnectionOptions(
                    headerTimeout: .seconds(headerTimeout),
                    bodyTimeout: .seconds(bodyTimeout),
                    keepAliveTimeout: .seconds(keepAliveTimeout),
                    sendTimeout: .seconds(sendTimeout),
                    maximumConnections: connections
                ),
                shutdownGracePeriod: .seconds(gracePeriod),
                redisURL: redisURL,
                redisFailurePolicy: failurePolicy,
                keyCipher: keyCipher,
                scheduling: EnginePool.Scheduling(rawValue: scheduling) ?? .contract,
                accounts: AccountSettings(
                    sessionLifetime: TimeInterval(sessionHours) * 3600,
                    publicURL: publicURL ?? environment["SWITCHYARD_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 },
                    smtpURL: smtpURL
                ),
                spool: spoolLocation,
                retainEventsDays: retainEventsDays,
                meterInProcess: meter,
                dataPlane: dataPlane,
                portalDirectory: portalDir ?? environment["SWITCHYARD_PORTAL_DIR"].flatMap { $0.isEmpty ? nil : $0 },
                accessLog: accessLog == .on,
                tracing: tracing,
                metricsTenantLabelLimit: metricsTenantLabels ? metricsTenantLimit : nil
            ),
            logger: logger
        )
        server.logServableModels()
        try await NetworkFailure.reportingListenFailure(host: host, port: port) { listening in
            try await server.run { boundPort in
                listening()
                logger.info("Switchyard listening", metadata: ["address": "http://\(host):\(boundPort)", "database": "\(databasePath)"])
            }
        }
        logger.info("Switchyard stopped")
    }
}

extension ServeCommand {
    /// The OpenTelemetry tracer and its OTLP/HTTP exporter, when an endpoint is given.
    func makeTraceExport(endpoint: String?, logger: Logger) throws -> SwitchyardServer.Options.TraceExport? {
        guard let endpoint else { return nil }
        guard let url = URL(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ValidationError("'\(endpoint)' is not an http or https URL")
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "switchyard"
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = Self.tracesURL(endpoint)
        if let sampler = OTel.Configuration.TracesConfiguration.SamplerConfiguration.parentBasedTraceIDRatio(ratio: traceSampling) {
            configuration.traces.sampler = sampler
        }
        configuration.diagnosticLogger = .custom(logger)
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        logger.info("exporting traces", metadata: ["endpoint": "\(configuration.traces.otlpExporter.endpoint)", "sampling": "\(traceSampling)"])
        return .init(tracer: backend.factory, service: backend.service)
    }

    /// `<base>/v1/traces`, unless the URL names that path already.
    static func tracesURL(_ endpoint: String) -> String {
        if endpoint.hasSuffix("/v1/traces") { return endpoint }
        return (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
    }
}

extension SwitchyardLogHandler.Format: ExpressibleByArgument {}

/// `on` or `off`, for options that read better than a flag pair.
enum Switch: String, ExpressibleByArgument, CaseIterable {
    case on
    case off
}

/// Sends every logger of the process to standard output as `format` (by default text on a
/// terminal, JSON otherwise), from `SWITCHYARD_LOG_LEVEL` (default info) up.
func bootstrapLogging(format: SwitchyardLogHandler.Format?, environment: [String: String]) {
    let format = format ?? (isatty(STDOUT_FILENO) == 1 ? .text : .json)
    let level = environment["SWITCHYARD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    LoggingSystem.bootstrap { label in
        SwitchyardLogHandler(label: label, format: format, level: level)
    }
}

func makeLogger(environment: [String: String], label: String = "switchyard") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = environment["SWITCHYARD_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}
