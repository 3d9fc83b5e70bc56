import ArgumentParser
import Billing
import Foundation
import Logging
import Pools
import Proxy
import ServiceLifecycle

/// `switchyard meter`: the one writer of the ledger when replicas run with `--redis`. It
/// moves the usage events the replicas append to the usage stream into the ledger, and
/// prunes raw events past their retention.
struct MeterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meter",
        abstract: "Move the usage stream in Redis into the ledger (run one beside replicas started with --redis).",
        discussion: """
            Replicas started with `serve --redis` append their usage events to the Redis stream \
            \(RedisUsageStream.defaultKey); this command stores them in the ledger, each request once, \
            and acknowledges them only once stored. Run one (a second one is harmless: they share the work \
            and take over what a stopped one left). Redis should persist (appendonly yes): replicas trim their \
            spool once Redis has the events. --redis and --db can also be set by SWITCHYARD_REDIS_URL and \
            SWITCHYARD_DB. SIGTERM or SIGINT stops it after the batch in hand.
            """
    )

    @Option(help: "The Redis the replicas use: redis://[user:pass@]host:port/db (env SWITCHYARD_REDIS_URL).")
    var redis: String?

    @Option(help: "The SQLite database file the replicas use (env SWITCHYARD_DB).")
    var db: String?

    @Option(help: "This meter's name in the consumer group; unique among running meters, the same across restarts (default: the host name).")
    var consumer: String?

    @Option(help: "Days raw usage events are kept (hourly rollups are kept for good).")
    var retainEventsDays: Int = 400

    @Option(help: "Most usage events read and stored in one transaction.")
    var batch: Int = 20_000

    func validate() throws {
        guard (1...36_500).contains(retainEventsDays) else {
            throw ValidationError("--retain-events-days must be from 1 to 36500, not \(retainEventsDays).")
        }
        guard (1...100_000).contains(batch) else {
            throw ValidationError("--batch must be from 1 to 100000, not \(batch).")
        }
        if let consumer, consumer.isEmpty || consumer.contains(where: \.isWhitespace) {
            throw ValidationError("--consumer must be a name without spaces, not '\(consumer)'.")
        }
    }

    @Option(help: "How log lines are written on standard output: 'json' or 'text'. Default: text on a terminal, json otherwise.")
    var logFormat: SwitchyardLogHandler.Format?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        bootstrapLogging(format: logFormat, environment: environment)
        defer { LogOutput.standardOutput.flush() }
        let logger = makeLogger(environment: environment, label: "switchyard-meter")
        let databasePath = db ?? environment["SWITCHYARD_DB"] ?? "var/switchyard.sqlite"
        guard let redisURL = redis ?? environment["SWITCHYARD_REDIS_URL"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw Self.failure("--redis (or SWITCHYARD_REDIS_URL) is required: the meter reads the usage stream the replicas append to in Redis")
        }
        let client: RedisClient
        do {
            client = try RedisUsageStream.meterClient(url: redisURL)
        } catch {
            throw Self.failure("--redis: \(error)")
        }
        let database: SwitchyardDatabase
        do {
            database = try SwitchyardDatabase(path: databasePath)
        } catch {
            try? await client.shutdown()
            throw Self.failure("\(databasePath): \(error)")
        }
        for file in PrivateFiles.exposedDatabaseFiles(databasePath) {
            logger.warning(
                "the ledger file is readable by other users; it holds tenants, key hashes and usage (chmod 600 it)",
                metadata: ["file": "\(file.path)", "mode": "\(String(file.mode, radix: 8))"]
            )
        }
        let stream = RedisUsageStream(client: client, logger: logger)
        let consumer = consumer ?? SwitchyardServer.meterConsumerName()
        logger.info(
            "switchyard meter: reading the usage stream, writing the ledger",
            metadata: [
                "redis": "\(client.configuration)", "stream": "\(stream.key)", "group": "\(RedisUsageStream.group)",
                "consumer": "\(consumer)", "database": "\(databasePath)", "retain_events_days": "\(retainEventsDays)",
            ]
        )
        let meter = UsageMeter(source: stream, ledger: database.ledger, consumer: consumer, batchSize: batch, logger: logger)
        let pruner = UsagePruner(ledger: database.ledger, retainDays: retainEventsDays, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                // Shut down in reverse: the pruner stops between two chunks, then the meter
                // finishes its batch.
                services: [.init(service: meter), .init(service: pruner)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                cancellationSignals: [],
                logger: logger
            )
        )
        do {
            try await group.run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
        try? database.ledger.checkpoint()
        logger.info("switchyard meter stopped")
    }

    /// Prints `switchyard meter: <message>` on standard error; the exit status 2 (bad
    /// configuration) to throw, like `serve`.
    private static func failure(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("switchyard meter: \(message)\n".utf8))
        return ExitCode(2)
    }
}
