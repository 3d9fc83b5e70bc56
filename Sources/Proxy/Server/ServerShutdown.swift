import Providers
import ServiceLifecycle
import Synchronization

/// Whether the server's grace period has run out, for the requests still running then.
final class ServerShutdown: Sendable {
    private let pastDeadline = Atomic<Bool>(false)
    private let began = Atomic<Bool>(false)

    init() {}

    /// True once graceful shutdown has begun: no new waits start.
    var isShuttingDown: Bool { began.load(ordering: .acquiring) || isPastDeadline }

    func shutdownBegan() {
        began.store(true, ordering: .releasing)
    }

    /// True once the grace period is over and upstream requests are being cut off.
    var isPastDeadline: Bool { pastDeadline.load(ordering: .acquiring) }

    func deadlinePassed() {
        pastDeadline.store(true, ordering: .releasing)
    }

    /// What a request cut off by the end of the grace period gets: in-band, as a stream's
    /// final event, or as the answer when none has started.
    static func error(requestID: String) -> OpenAIError {
        OpenAIError(
            status: 503,
            message: "Switchyard is shutting down and its grace period ran out before this answer was complete (request id \(requestID)); retry the request.",
            type: "server_error",
            code: "shutting_down"
        )
    }
}

/// Runs a service (the HTTP application) and, once graceful shutdown has lasted
/// `gracePeriod`, calls `onDeadline` while the service is still running, so requests still
/// open can be ended in an orderly way instead of by cancellation.
struct GracePeriodService<Wrapped: Service>: Service {
    let service: Wrapped
    let gracePeriod: Duration
    /// Called as graceful shutdown begins.
    var onShutdown: @Sendable () -> Void = {}
    let onDeadline: @Sendable () async -> Void

    func run() async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await service.run()
                return true
            }
            group.addTask {
                do {
                    try await gracefulShutdown()
                    onShutdown()
                    try await Task.sleep(for: gracePeriod)
                } catch {
                    return false
                }
                await onDeadline()
                return false
            }
            while let serviceEnded = try await group.next() {
                if serviceEnded {
                    group.cancelAll()
                    return
                }
            }
        }
    }
}
