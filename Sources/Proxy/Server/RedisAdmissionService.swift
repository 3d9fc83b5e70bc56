import Pools
import ServiceLifecycle

/// Runs the queues that send Redis admission settlements and key-pool releases for the
/// server's lifetime and, on graceful shutdown, sends what is queued before closing the
/// Redis client.
struct RedisAdmissionService: Service {
    let admission: RedisAdmission
    let keyPool: RedisKeyPool
    let client: RedisClient

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await admission.run() }
            group.addTask { await keyPool.run() }
            group.addTask {
                try? await gracefulShutdown()
                await admission.shutdown()
                await keyPool.shutdown()
            }
            await group.waitForAll()
        }
        try await client.shutdown()
    }
}
