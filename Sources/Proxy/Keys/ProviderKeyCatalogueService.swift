import Logging
import ServiceLifecycle

/// Keeps the provider-key catalogue in step with the ledger, so a key added, drained,
/// retired or re-enabled through any replica reaches this one within `interval`.
/// Checking costs one `MAX(revision)` read of the small catalogue table per interval.
struct ProviderKeyCatalogueService: Service {
    let catalogue: ProviderKeyCatalogue
    let interval: Duration
    let logger: Logger

    func run() async throws {
        var failing = false
        while !Task.isShuttingDownGracefully {
            do {
                try await catalogue.refresh()
                if failing { logger.info("provider-key catalogue readable again") }
                failing = false
            } catch {
                if !failing {
                    logger.warning("provider-key catalogue cannot be read; keeping the last one", metadata: ["error": "\(error)"])
                }
                failing = true
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}
