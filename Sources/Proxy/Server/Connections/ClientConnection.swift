import Synchronization

/// One client connection, as the requests on it see it: whether the client is still
/// there. The connection handler reports when it leaves; a request waiting on an upstream
/// uses that to give the upstream up at once rather than when the answer is complete.
///
/// Bound to the task serving the connection (`ClientConnection.current`), so the request
/// context reads it without any global registry.
final class ClientConnection: Sendable {
    /// The connection the current task serves; nil outside a connection (router tests).
    @TaskLocal static var current: ClientConnection?

    private enum State {
        /// The client is there. `waiter` is a request's wait for "left, or done".
        case open(waiter: CheckedContinuation<Bool, Never>?, operationDone: Bool)
        case left
    }

    private let state = Mutex<State>(.open(waiter: nil, operationDone: false))

    init() {}

    /// Whether the client has closed the connection.
    var hasLeft: Bool {
        state.withLock { if case .left = $0 { true } else { false } }
    }

    /// Called by the connection handler, on the event loop, when the client's side closes.
    func clientLeft() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard case .open(let waiter, _) = state else { return nil }
            state = .left
            return waiter
        }
        waiter?.resume(returning: true)
    }

    /// Runs `operation`, cancelling it when the client leaves before it completes.
    ///
    /// HTTP/1.1 serves one request at a time per connection, so one operation at a time
    /// waits here.
    func cancellingIfClientLeaves<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await withThrowingTaskGroup(of: Value.self) { group in
            group.addTask {
                defer { self.operationDone() }
                return try await operation()
            }
            if await waitUntilLeftOrDone() { group.cancelAll() }
            // The operation's own result, or the error it ended with once cancelled.
            guard let value = try await group.next() else { throw CancellationError() }
            return value
        }
    }

    private func operationDone() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            guard case .open(let waiter, _) = state else { return nil }
            state = .open(waiter: nil, operationDone: waiter == nil)
            return waiter
        }
        waiter?.resume(returning: false)
    }

    /// True when the client left first; false when the operation finished first.
    private func waitUntilLeftOrDone() async -> Bool {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state -> Bool? in
                switch state {
                case .left:
                    return true
                case .open(_, operationDone: true):
                    state = .open(waiter: nil, operationDone: false)
                    return false
                case .open(let waiter, operationDone: false):
                    // HTTP/1.1 serves one request at a time on a connection.
                    precondition(waiter == nil, "two operations wait on one client connection")
                    state = .open(waiter: continuation, operationDone: false)
                    return nil
                }
            }
            if let resume { continuation.resume(returning: resume) }
        }
    }
}
