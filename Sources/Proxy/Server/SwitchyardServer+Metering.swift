import Billing
import Foundation
import Logging
import Pools
import ServiceLifecycle

extension SwitchyardServer {
    /// The services that write usage events into the ledger besides the usage writer:
    /// the meter of the usage stream and the retention pruner, in the process that writes
    /// the ledger.
    struct Metering {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        /// The meter's own Redis client, shut down once the services have stopped.
        var client: RedisClient?

        /// Closes the meter's Redis client; call after the service group has returned.
        func stop() async {
            try? await client?.shutdown()
        }
    }

    /// Without Redis this process writes the ledger, and prunes it. With Redis it writes
    /// the ledger only with `meterInProcess`; otherwise it says, once, that
    /// `switchyard meter` must run.
    func makeMetering() throws -> Metering {
        let pruner = options.retainEventsDays.map { UsagePruner(ledger: ledger, retainDays: $0, logger: logger) }
        guard let usageStream, let redisURL = options.redisURL else {
            return Metering(services: pruner.map { [.init(service: $0)] } ?? [])
        }
        guard options.meterInProcess else {
            logger.notice(
                "usage events go to the usage stream in Redis: `switchyard meter --redis <url> --db <database>` must run to write them to the ledger",
                metadata: ["stream": "\(usageStream.key)", "redis": "\(usageStream.client.configuration)"]
            )
            return Metering()
        }
        let client = try RedisUsageStream.meterClient(url: redisURL)
        let meter = UsageMeter(
            source: RedisUsageStream(client: client, key: usageStream.key, logger: logger), ledger: ledger,
            consumer: Self.meterConsumerName(), logger: logger
        )
        return Metering(services: [.init(service: meter)] + (pruner.map { [.init(service: $0)] } ?? []), client: client)
    }

    /// The host name: one meter per host, under the same name after a restart.
    public static func meterConsumerName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "meter"
        // Stable across restarts: a meter that was killed and started again reads the
        // entries it was handed and never acknowledged at once, instead of waiting for
        // another meter's idle claim.
        return host.isEmpty ? "meter" : host
    }
}
