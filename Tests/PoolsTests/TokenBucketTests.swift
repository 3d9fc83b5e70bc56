import Testing

@testable import Pools

@Suite("TokenBucket")
struct TokenBucketTests {
    private let start = ContinuousClock.now

    private func emptied(perMinute limit: Int) -> TokenBucket {
        var bucket = TokenBucket(perMinute: limit, now: start)
        let took = bucket.tryTake(limit, now: start)
        #expect(took)
        #expect(bucket.level == 0)
        return bucket
    }

    // MARK: Refill

    @Test("starts full and refills over time, never past its capacity")
    func refillCapped() {
        var bucket = emptied(perMinute: 60)
        bucket.refill(now: start + .seconds(30))
        #expect(bucket.level == 30)
        bucket.refill(now: start + .seconds(59))
        #expect(bucket.level == 59)
        bucket.refill(now: start + .seconds(600))
        #expect(bucket.level == 60)
        #expect(bucket.units == 60 * bucket.periodTicks)
        #expect(bucket.timeUntilFull(now: start + .seconds(600)) == .zero)
    }

    @Test("a fractional rate (10 per minute, one per 6 s) accumulates exactly over many uneven small steps")
    func noDrift() {
        var stepped = emptied(perMinute: 10)
        // Steps of 0.333 ms, 1.7 ms, 13 µs and 2.9 ms, none a whole tick, repeated until 6 s.
        let steps: [Duration] = [.microseconds(333), .microseconds(1700), .microseconds(13), .microseconds(2900)]
        var now = start
        var index = 0
        while now + steps[index % steps.count] < start + .seconds(6) {
            now += steps[index % steps.count]
            stepped.refill(now: now)
            #expect(stepped.level == 0, "a token appeared early, at \(now - start)")
            index += 1
        }
        #expect(index > 1000)
        stepped.refill(now: start + .seconds(6) - .nanoseconds(1))
        #expect(stepped.level == 0)
        stepped.refill(now: start + .seconds(6))
        #expect(stepped.level == 1)
        #expect(stepped.units == stepped.periodTicks, "exactly one token, not a fraction more or less")

        // The same steps for a whole minute leave the bucket exactly as one refill does.
        var direct = emptied(perMinute: 10)
        var minute = emptied(perMinute: 10)
        now = start
        index = 0
        while now + steps[index % steps.count] < start + .seconds(59) {
            now += steps[index % steps.count]
            minute.refill(now: now)
            index += 1
        }
        direct.refill(now: now)
        #expect(minute == direct)
        #expect(minute.level == 9)
        minute.refill(now: start + .seconds(60))
        #expect(minute.level == 10)
    }

    @Test("an instant before the last refill changes nothing")
    func timeBackwards() {
        var bucket = emptied(perMinute: 60)
        bucket.refill(now: start + .seconds(10))
        let before = bucket
        bucket.refill(now: start + .seconds(5))
        #expect(bucket == before)
        #expect(bucket.level == 10)
    }

    // MARK: Taking and giving back

    @Test("tryTake takes only what the bucket holds; giveBack returns it")
    func takeAndRefund() {
        var bucket = TokenBucket(perMinute: 100, now: start)
        let tookSeventy = bucket.tryTake(70, now: start)
        #expect(tookSeventy)
        #expect(bucket.level == 30)
        let before = bucket
        let tookTooMany = bucket.tryTake(31, now: start)
        #expect(!tookTooMany)
        #expect(bucket == before, "a refused take changes nothing")
        let tookRest = bucket.tryTake(30, now: start)
        #expect(tookRest)
        #expect(bucket.level == 0)
        bucket.giveBack(25, now: start)
        #expect(bucket.level == 25)
        let tookBeyond = bucket.tryTake(101, now: start + .seconds(3600))
        #expect(!tookBeyond, "more than the capacity never fits")
    }

    @Test("giveBack never fills past the capacity")
    func giveBackCapped() {
        var bucket = TokenBucket(perMinute: 100, now: start)
        let took = bucket.tryTake(10, now: start)
        #expect(took)
        bucket.giveBack(50, now: start)
        #expect(bucket.level == 100)
        bucket.giveBack(Int.max, now: start)
        #expect(bucket.level == 100)
    }

    @Test("take after the fact goes into debt, at most one capacity deep")
    func debt() {
        var bucket = TokenBucket(perMinute: 60, now: start)
        bucket.take(90, now: start)
        #expect(bucket.level == -30)
        #expect(bucket.available == 0)
        #expect(!bucket.canTake(0), "in debt, even an empty request waits")
        #expect(bucket.timeUntilAvailable(0, now: start) == .seconds(30))
        #expect(bucket.timeUntilAvailable(10, now: start) == .seconds(40))
        bucket.take(Int.max, now: start)
        #expect(bucket.level == -60)
        #expect(bucket.timeUntilFull(now: start) == .seconds(120))
    }

    // MARK: Waiting

    @Test("timeUntilAvailable counts the exact wait, including time already elapsed")
    func waits() {
        let bucket = emptied(perMinute: 10)
        #expect(bucket.timeUntilAvailable(1, now: start) == .seconds(6))
        #expect(bucket.timeUntilAvailable(1, now: start + .milliseconds(2500)) == .milliseconds(3500))
        // Half a tick elapsed is not yet refilled but still shortens the wait.
        #expect(bucket.timeUntilAvailable(1, now: start + .microseconds(500)) == .microseconds(5_999_500))
        #expect(bucket.timeUntilAvailable(3, now: start + .seconds(7)) == .seconds(11))
        #expect(bucket.timeUntilAvailable(0, now: start) == .zero)
        #expect(bucket.timeUntilAvailable(11, now: start) == nil)
        #expect(bucket.timeUntilFull(now: start) == .seconds(60))
        #expect(bucket.timeUntilFull(now: start + .seconds(45)) == .seconds(15))
        // 7 per minute: a token every 8571.43 ms, so the wait rounds up to the next tick.
        let odd = emptied(perMinute: 7)
        #expect(odd.timeUntilAvailable(1, now: start) == .milliseconds(8572))
        #expect(odd.refilled(now: start + .milliseconds(8571)).level == 0)
        #expect(odd.refilled(now: start + .milliseconds(8572)).level == 1)
    }

    // MARK: Limits

    @Test("resizing keeps what has been used")
    func resize() {
        var bucket = TokenBucket(perMinute: 1000, now: start)
        let took = bucket.tryTake(600, now: start)
        #expect(took)
        let raised = bucket.resized(capacity: 2000, refill: 2000, now: start)
        #expect(raised.capacity == 2000)
        #expect(raised.level == 1400)
        let lowered = bucket.resized(capacity: 500, refill: 500, now: start)
        #expect(lowered.level == -100)
        #expect(lowered.timeUntilAvailable(0, now: start) == .seconds(12))
    }

    @Test("extreme values neither trap nor overflow")
    func extremes() {
        var huge = TokenBucket(capacity: Int.max, refill: Int.max, per: .seconds(60), now: start)
        #expect(huge.capacity > 1_000_000_000_000)
        let took = huge.tryTake(huge.capacity, now: start)
        #expect(took)
        huge.refill(now: start + .seconds(86_400 * 365 * 100))
        #expect(huge.level == huge.capacity)
        huge.take(Int.max, now: start + .seconds(86_400 * 365 * 100))
        #expect(huge.level == -huge.capacity)

        var idle = emptied(perMinute: 10)
        idle.refill(now: start + .seconds(86_400 * 365 * 100))
        #expect(idle.level == 10)

        let closed = TokenBucket(perMinute: 0, now: start)
        #expect(closed.canTake(0))
        #expect(!closed.canTake(1))
        #expect(closed.timeUntilAvailable(1, now: start) == nil)
    }
}
