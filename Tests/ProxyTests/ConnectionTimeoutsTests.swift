import NIOCore
import Testing

@testable import Proxy

@Suite("Client connection timeouts")
struct ConnectionTimeoutsTests {
    private let configuration = ConnectionTimeouts.Configuration(
        header: .seconds(10), body: .seconds(30), keepAlive: .seconds(60), send: .seconds(45)
    )
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test("a connection that sends nothing expires after the header timeout")
    func silentConnection() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        let step1 = timeouts.start()
        #expect(step1 == .schedule(at(10)))
        let step2 = timeouts.timerFired(now: at(10))
        #expect(step2 == .expire(.header))
        let step3 = timeouts.timerFired(now: at(20))
        #expect(step3 == .none, "expires once")
    }

    @Test("a head trickled a byte at a time still has the header timeout from its first byte")
    func trickledHead() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        for second in 1...9 {
            let step4 = timeouts.bytesReceived(now: at(Int64(second)))
            #expect(step4 == .none, "a steady trickle does not extend it")
        }
        let step5 = timeouts.timerFired(now: at(10))
        #expect(step5 == .expire(.header))
    }

    @Test("a body may pause up to the body timeout between reads, and no longer")
    func bodyPauses() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        _ = timeouts.bytesReceived(now: at(1))
        _ = timeouts.requestHead(now: at(1))
        // The check scheduled for the header (at 10) finds the body's later deadline.
        let step6 = timeouts.timerFired(now: at(10))
        #expect(step6 == .schedule(at(31)))
        let step7 = timeouts.bytesReceived(now: at(20))
        #expect(step7 == .none)
        let step8 = timeouts.timerFired(now: at(31))
        #expect(step8 == .schedule(at(50)))
        let step9 = timeouts.timerFired(now: at(50))
        #expect(step9 == .expire(.body))
    }

    @Test("nothing expires while a response is written, however long it streams")
    func respondingNeverExpires() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        _ = timeouts.bytesReceived(now: at(0))
        _ = timeouts.requestHead(now: at(0))
        let step10 = timeouts.requestEnd()
        #expect(step10 == .none)
        #expect(timeouts.currentDeadline == nil)
        let step11 = timeouts.timerFired(now: at(10))
        #expect(step11 == .none)
        let step12 = timeouts.timerFired(now: at(3600))
        #expect(step12 == .none)
        // Then the connection idles: keep-alive from the end of the response.
        let step13 = timeouts.responseEnd(now: at(3600))
        #expect(step13 == .schedule(at(3660)))
        let step14 = timeouts.timerFired(now: at(3660))
        #expect(step14 == .expire(.keepAlive))
    }

    @Test("the next request on a kept-alive connection gets the header timeout from its first byte")
    func keepAliveThenHeader() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        _ = timeouts.requestHead(now: at(0))
        _ = timeouts.requestEnd()
        _ = timeouts.responseEnd(now: at(1))
        let keepAlive = timeouts.timerFired(now: at(10))
        #expect(keepAlive == .schedule(at(61)))
        let header = timeouts.bytesReceived(now: at(30))
        #expect(header == .schedule(at(40)), "the header deadline comes before keep-alive's")
        let expiry = timeouts.timerFired(now: at(40))
        #expect(expiry == .expire(.header))
    }

    @Test("a pipelined request's unread body is not the client's delay; its head waits for its turn")
    func pipelining() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.requestHead(now: at(0))
        _ = timeouts.requestEnd()
        _ = timeouts.requestHead(now: at(1))
        #expect(timeouts.currentDeadline == nil, "two requests owed an answer: the first is being answered")
        let meanwhile = timeouts.timerFired(now: at(30))
        #expect(meanwhile == .none)
        let second = timeouts.responseEnd(now: at(500))
        #expect(second == .schedule(at(530)), "now the second's body is read")

        var partial = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = partial.requestHead(now: at(0))
        _ = partial.requestEnd()
        _ = partial.bytesReceived(now: at(2))
        #expect(partial.currentDeadline == nil)
        _ = partial.timerFired(now: at(30))
        let next = partial.responseEnd(now: at(100))
        #expect(next == .schedule(at(110)), "its header allowance starts when its turn comes")
    }

    @Test("a later deadline schedules nothing new; the earlier check reschedules")
    func lazyRescheduling() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        let step20 = timeouts.start()
        #expect(step20 == .schedule(at(10)))
        let step21 = timeouts.requestHead(now: at(5))
        #expect(step21 == .none, "the body deadline (35) is later than the check at 10")
        let step22 = timeouts.requestEnd()
        #expect(step22 == .none)
        let step23 = timeouts.timerFired(now: at(10))
        #expect(step23 == .none, "answering: nothing to schedule")
        let step24 = timeouts.responseEnd(now: at(12))
        #expect(step24 == .schedule(at(72)))
    }

    @Test("a client that reads nothing of what is written is closed after the send timeout, whatever is being answered")
    func sendStall() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        _ = timeouts.requestHead(now: at(0))
        _ = timeouts.requestEnd()
        _ = timeouts.timerFired(now: at(10))
        let blocked = timeouts.writabilityChanged(isWritable: false, now: at(100))
        #expect(blocked == .schedule(at(145)))
        let read = timeouts.writabilityChanged(isWritable: true, now: at(140))
        #expect(read == .none, "the client read: the later check finds nothing due")
        let stillAnswering = timeouts.timerFired(now: at(145))
        #expect(stillAnswering == .none)
        _ = timeouts.writabilityChanged(isWritable: false, now: at(200))
        let expiry = timeouts.timerFired(now: at(245))
        #expect(expiry == .expire(.send))
    }
}

