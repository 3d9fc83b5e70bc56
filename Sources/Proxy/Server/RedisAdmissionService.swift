import Pools
import ServiceLifecycle

/// Runs the queues that send Redis admission settlements, key-pool releases and engine
/// slot gives for the server's lifetime, and the engine pools' loops that take shared slot
/// leases for their waiters; on graceful shutdown, sends what is queued before closing the
/// Redis client.
struct RedisAdmissionService: Service {
    let admission: RedisAdmission
    let keyPool: RedisKeyPool
    let slotLeases: RedisSlotLeases
    let enginePools: [EnginePool]
    let client: RedisClient

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await admission.run() }
            group.addTask { await keyPool.run() }
            group.addTask { await slotLeases.run() }
            group.addTask {
                // The pools' loops stop with the shutdown: requests still waiting then are
                // ended by the application's grace period.
                await cancelWhenGracefulShutdown {
                    await withTaskGroup(of: Void.self) { pools in
                        for pool in enginePools { pools.addTask { await pool.run() } }
                    }
                }
            }
            group.addTask {
                try? await gracefulShutdown()
                await admission.shutdown()
                await keyPool.shutdown()
                await slotLeases.shutdown()
            }
            await group.waitForAll()
        }
        try await client.shutdown()
    }
}
