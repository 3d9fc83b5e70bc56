import Testing

@testable import Pools

/// The batch queue's state machine, without Redis: items are numbers, waiters are names.
@Suite("RedisBatchQueue")
struct RedisBatchQueueTests {
    typealias Queue = RedisBatchQueue<Int, String>

    private func batch(_ queue: inout Queue) -> [Int]? {
        if case .send(let batch) = queue.nextBatch() { return batch }
        return nil
    }

    @Test("items go out oldest first, in batches, and an item wakes the parked loop")
    func batches() {
        var queue = Queue(capacity: 10, batchSize: 3)
        let startRunning1 = queue.startRunning()
        #expect(startRunning1)
        guard case .wait = queue.nextBatch() else { Issue.record("an empty queue has nothing to send"); return }
        let park2 = queue.park("loop", cancelled: false)
        #expect(park2 == nil, "parked")
        guard case .queued(let wake) = queue.enqueue(1) else { Issue.record("queued"); return }
        #expect(wake == "loop")
        for item in 2...7 { _ = queue.enqueue(item) }
        let park3 = queue.park("loop", cancelled: false)
        #expect(park3 == "loop", "work waiting: not parked")
        #expect(batch(&queue) == [1, 2, 3])
        #expect(batch(&queue) == [4, 5, 6])
        #expect(batch(&queue) == [7])
        #expect(queue.pendingCount == 0)
    }

    @Test("a full queue drops, reporting the first drop of each burst")
    func drops() {
        var queue = Queue(capacity: 2, batchSize: 10)
        _ = queue.enqueue(1)
        _ = queue.enqueue(2)
        guard case .dropped(first: true) = queue.enqueue(3) else { Issue.record("first drop"); return }
        guard case .dropped(first: false) = queue.enqueue(4) else { Issue.record("same burst"); return }
        _ = batch(&queue)
        guard case .queued = queue.enqueue(5) else { Issue.record("room again"); return }
        _ = queue.enqueue(6)
        guard case .dropped(first: true) = queue.enqueue(7) else { Issue.record("a new burst"); return }
    }

    @Test("a failed batch goes back to the front; what no longer fits is dropped")
    func failure() {
        var queue = Queue(capacity: 4, batchSize: 2)
        let startRunning4 = queue.startRunning()
        #expect(startRunning4)
        for item in 1...4 { _ = queue.enqueue(item) }
        let sent = batch(&queue)
        #expect(sent == [1, 2])
        _ = queue.enqueue(5)
        _ = queue.enqueue(6)
        guard case .retry(dropped: 2) = queue.batchFailed(sent ?? []) else { Issue.record("retried"); return }
        #expect(batch(&queue) == [1, 2])
        #expect(batch(&queue) == [3, 4])
        let nextBatch5 = queue.nextBatch()
        #expect(nextBatch5.isWait)
    }

    @Test("shutdown wakes the loop, lets it send what is queued, then stops it; later items are dropped")
    func shutdown() {
        var queue = Queue(capacity: 10, batchSize: 2)
        let startRunning6 = queue.startRunning()
        #expect(startRunning6)
        let park7 = queue.park("loop", cancelled: false)
        #expect(park7 == nil)
        _ = queue.enqueue(1)
        let park8 = queue.park("loop", cancelled: false)
        #expect(park8 == "loop")
        _ = queue.enqueue(2)
        _ = queue.enqueue(3)
        let beginShutdown9 = queue.beginShutdown()
        #expect(beginShutdown9 == nil, "the loop was not parked")
        let waitForStop10 = queue.waitForStop("shutdown")
        #expect(waitForStop10)
        guard case .dropped = queue.enqueue(4) else { Issue.record("dropped after shutdown"); return }
        #expect(batch(&queue) == [1, 2])
        let batchSent11 = queue.batchSent()
        #expect(batchSent11 == [])
        #expect(batch(&queue) == [3])
        let batchSent12 = queue.batchSent()
        #expect(batchSent12 == [])
        guard case .finish = queue.nextBatch() else { Issue.record("finished"); return }
        let runStopped13 = queue.runStopped()
        #expect(runStopped13 == ["shutdown"])
        let startRunning14 = queue.startRunning()
        #expect(!startRunning14, "no loop after shutdown")
        let waitForStop15 = queue.waitForStop("again")
        #expect(!waitForStop15)
    }

    @Test("a failure at shutdown gives up everything queued and wakes flush callers")
    func failureAtShutdown() {
        var queue = Queue(capacity: 10, batchSize: 2)
        let startRunning16 = queue.startRunning()
        #expect(startRunning16)
        for item in 1...5 { _ = queue.enqueue(item) }
        let sent = batch(&queue) ?? []
        let waitForFlush17 = queue.waitForFlush("flush")
        #expect(waitForFlush17)
        _ = queue.beginShutdown()
        guard case .abandoned(let count, let wake) = queue.batchFailed(sent) else { Issue.record("abandoned"); return }
        #expect(count == 5)
        #expect(wake == ["flush"])
        guard case .finish = queue.nextBatch() else { Issue.record("nothing left"); return }
    }

    @Test("flush waits for the loop while it runs, sends itself when it does not, and is done when idle")
    func flush() {
        var queue = Queue(capacity: 10, batchSize: 10)
        #expect(queue.flushStep() == .done)
        _ = queue.enqueue(1)
        #expect(queue.flushStep() == .sendYourself, "no loop")
        let waitForFlush18 = queue.waitForFlush("flush")
        #expect(!waitForFlush18)
        let startRunning19 = queue.startRunning()
        #expect(startRunning19)
        let startRunning20 = queue.startRunning()
        #expect(!startRunning20, "one loop at a time")
        let waitForFlush21 = queue.waitForFlush("flush")
        #expect(waitForFlush21)
        let sent = batch(&queue)
        #expect(queue.flushStep() == .wait, "a batch is out")
        _ = queue.enqueue(2)
        let batchSent22 = queue.batchSent()
        #expect(batchSent22 == [], "one more is queued")
        _ = sent
        _ = batch(&queue)
        let batchSent23 = queue.batchSent()
        #expect(batchSent23 == ["flush"])
        #expect(queue.flushStep() == .done)
    }

    @Test("a cancelled loop is not parked, and when it stops flush callers are woken")
    func cancellation() {
        var queue = Queue(capacity: 10, batchSize: 10)
        let startRunning24 = queue.startRunning()
        #expect(startRunning24)
        let park25 = queue.park("loop", cancelled: true)
        #expect(park25 == "loop")
        let park26 = queue.park("loop", cancelled: false)
        #expect(park26 == nil)
        let takeParked27 = queue.takeParked()
        #expect(takeParked27 == "loop")
        let takeParked28 = queue.takeParked()
        #expect(takeParked28 == nil)
        _ = queue.enqueue(1)
        let waitForFlush29 = queue.waitForFlush("flush")
        #expect(waitForFlush29)
        let runStopped30 = queue.runStopped()
        #expect(runStopped30 == ["flush"])
        #expect(queue.flushStep() == .sendYourself)
    }
}

extension RedisBatchQueue.Next {
    fileprivate var isWait: Bool {
        if case .wait = self { true } else { false }
    }
}
