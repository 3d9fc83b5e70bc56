import Testing

@testable import EngineSim

@Suite struct SlotQueueStateMachineTests {
    typealias Machine = SlotQueue.StateMachine<String>

    @Test func grantsFreeSlotsThenQueues() {
        var machine = Machine(slots: 2)
        let grants = [machine.tryAcquire(), machine.tryAcquire(), machine.tryAcquire()]
        #expect(grants == [true, true, false])
        let id = machine.makeWaiterID()
        guard case .wait = machine.acquire(id: id, waiter: "third") else {
            Issue.record("third request should wait")
            return
        }
        #expect(machine.running == 2)
        #expect(machine.waiting == 1)
    }

    @Test func releaseHandsTheSlotToTheOldestWaiter() {
        var machine = Machine(slots: 1)
        _ = machine.tryAcquire()
        for name in ["a", "b", "c"] {
            _ = machine.acquire(id: machine.makeWaiterID(), waiter: name)
        }
        var order: [String] = []
        while case .resume(let waiter) = machine.release() {
            order.append(waiter)
            #expect(machine.running == 1)
        }
        #expect(order == ["a", "b", "c"])
        #expect(machine.running == 0)
        #expect(machine.waiting == 0)
    }

    @Test func cancelledWaitersLeaveTheQueueAndAreSkipped() {
        var machine = Machine(slots: 1)
        _ = machine.tryAcquire()
        let a = machine.makeWaiterID()
        _ = machine.acquire(id: a, waiter: "a")
        let b = machine.makeWaiterID()
        _ = machine.acquire(id: b, waiter: "b")
        guard case .fail(let cancelled) = machine.cancel(a) else {
            Issue.record("a was waiting")
            return
        }
        #expect(cancelled == "a")
        #expect(machine.waiting == 1)
        guard case .none = machine.cancel(a) else {
            Issue.record("a is already gone")
            return
        }
        guard case .resume(let next) = machine.release() else {
            Issue.record("b should get the slot")
            return
        }
        #expect(next == "b")
        guard case .none = machine.cancel(b) else {
            Issue.record("b holds a slot and cannot be cancelled out of the queue")
            return
        }
        guard case .none = machine.release() else {
            Issue.record("nobody is waiting")
            return
        }
        #expect(machine.running == 0)
    }

    @Test func newcomersDoNotOvertakeWaiters() {
        var machine = Machine(slots: 1)
        _ = machine.tryAcquire()
        _ = machine.acquire(id: machine.makeWaiterID(), waiter: "waiter")
        guard case .resume = machine.release() else {
            Issue.record("the waiter should get the slot")
            return
        }
        let newcomerGranted = machine.tryAcquire()
        #expect(!newcomerGranted)
    }

    @Test func longQueuesStayFIFOAcrossCompaction() {
        var machine = Machine(slots: 1)
        _ = machine.tryAcquire()
        var ids: [UInt64] = []
        for index in 0..<5000 {
            let id = machine.makeWaiterID()
            ids.append(id)
            _ = machine.acquire(id: id, waiter: "\(index)")
        }
        for id in ids where id % 3 == 0 {
            _ = machine.cancel(id)
        }
        var served: [String] = []
        while case .resume(let waiter) = machine.release() {
            served.append(waiter)
        }
        let expected = (0..<5000).filter { $0 % 3 != 0 }.map(String.init)
        #expect(served == expected)
        #expect(machine.running == 0)
    }

    @Test func atLeastOneSlot() {
        var machine = Machine(slots: 0)
        #expect(machine.slots == 1)
        _ = machine.tryAcquire()
    }
}

@Suite struct SlotQueueTests {
    /// Waits (without asserting on time) until the queue reports `waiting` waiters.
    private func waitUntil(_ queue: SlotQueue, waiting: Int) async {
        while await queue.snapshot().waiting != waiting {
            await Task.yield()
        }
    }

    @Test func thirdRequestWaitsWhileTwoSlotsAreBusy() async throws {
        let queue = SlotQueue(slots: 2)
        try await queue.acquire()
        try await queue.acquire()
        let third = Task { try await queue.acquire() }
        await waitUntil(queue, waiting: 1)
        #expect(await queue.snapshot() == .init(slots: 2, running: 2, waiting: 1))

        await queue.release()
        try await third.value
        #expect(await queue.snapshot() == .init(slots: 2, running: 2, waiting: 0))
        await queue.release()
        await queue.release()
        #expect(await queue.snapshot() == .init(slots: 2, running: 0, waiting: 0))
    }

    @Test func waitersAreServedInArrivalOrder() async throws {
        let queue = SlotQueue(slots: 1)
        let log = OrderLog()
        try await queue.acquire()
        var tasks: [Task<Void, any Error>] = []
        for index in 0..<5 {
            tasks.append(Task {
                try await queue.acquire()
                await log.append(index)
                await queue.release()
            })
            await waitUntil(queue, waiting: index + 1)
        }
        await queue.release()
        for task in tasks {
            try await task.value
        }
        #expect(await log.entries == [0, 1, 2, 3, 4])
        #expect(await queue.snapshot().running == 0)
    }

    @Test func cancellingAWaiterRemovesItFromTheQueue() async throws {
        let queue = SlotQueue(slots: 1)
        try await queue.acquire()
        let waiter = Task { try await queue.acquire() }
        await waitUntil(queue, waiting: 1)

        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(await queue.snapshot() == .init(slots: 1, running: 1, waiting: 0))

        await queue.release()
        #expect(await queue.snapshot().running == 0)
    }

    @Test func aTaskCancelledBeforeItWaitsDoesNotQueue() async throws {
        let queue = SlotQueue(slots: 1)
        try await queue.acquire()
        let waiter = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await queue.acquire()
        }
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(await queue.snapshot() == .init(slots: 1, running: 1, waiting: 0))
        await queue.release()
    }
}

/// Records the order in which concurrent tasks got their slot.
private actor OrderLog {
    private(set) var entries: [Int] = []

    func append(_ entry: Int) {
        entries.append(entry)
    }
}
