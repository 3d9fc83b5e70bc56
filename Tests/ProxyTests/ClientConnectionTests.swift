import Testing

@testable import Proxy

@Suite("Client connection")
struct ClientConnectionTests {
    @Test("an operation that finishes first returns its value, and the next one waits afresh")
    func operationFinishesFirst() async throws {
        let connection = ClientConnection()
        #expect(try await connection.cancellingIfClientLeaves { 42 } == 42)
        #expect(try await connection.cancellingIfClientLeaves {
            try await Task.sleep(for: .milliseconds(5))
            return 7
        } == 7)
        #expect(!connection.hasLeft)
    }

    @Test("the client leaving cancels the operation waiting on an upstream")
    func clientLeavesFirst() async throws {
        let connection = ClientConnection()
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await #expect(throws: CancellationError.self) {
                    try await connection.cancellingIfClientLeaves {
                        startedContinuation.yield()
                        // Stands in for an upstream that never answers.
                        try await Task.sleep(for: .seconds(3600))
                    }
                }
            }
            var iterator = started.makeAsyncIterator()
            await iterator.next()
            connection.clientLeft()
            try await group.waitForAll()
        }
        #expect(connection.hasLeft)
    }

    @Test("once the client has left, an operation is cancelled as it starts")
    func alreadyLeft() async throws {
        let connection = ClientConnection()
        connection.clientLeft()
        await #expect(throws: CancellationError.self) {
            try await connection.cancellingIfClientLeaves {
                try await Task.sleep(for: .seconds(3600))
            }
        }
    }
}
