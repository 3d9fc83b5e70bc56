import NIOCore
import Testing

@testable import Proxy

@Suite("Client connection timeouts")
struct ConnectionTimeoutsTests {
    private let configuration = ConnectionTimeouts.Configuration(header: .seconds(10), body: .seconds(30), keepAlive: .seconds(60))
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    private func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test("a connection that sends nothing expires after the header timeout")
    func silentConnection() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        let result1 = timeouts.start()
        #expect(result1 == .schedule(at(10)))
        let result2 = timeouts.timerFired(now: at(10))
        #expect(result2 == .expire(.header))
        let result3 = timeouts.timerFired(now: at(20))
        #expect(result3 == .none, "expires once")
    }

    @Test("a head trickled a byte at a time still has the header timeout from its first byte")
    func trickledHead() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        for second in 1...9 {
            let result4 = timeouts.bytesReceived(now: at(Int64(second)))
            #expect(result4 == .none, "a steady trickle does not extend it")
        }
        let result5 = timeouts.timerFired(now: at(10))
        #expect(result5 == .expire(.header))
    }

    @Test("a body may pause up to the body timeout between reads, and no longer")
    func bodyPauses() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        _ = timeouts.bytesReceived(now: at(1))
        _ = timeouts.requestHead(now: at(1))
        // The check scheduled for the header (at 10) finds the body's later deadline.
        let result6 = timeouts.timerFired(now: at(10))
        #expect(result6 == .schedule(at(31)))
        let result7 = timeouts.bytesReceived(now: at(20))
        #expect(result7 == .none)
        let result8 = timeouts.timerFired(now: at(31))
        #expect(result8 == .schedule(at(50)))
        let result9 = timeouts.timerFired(now: at(50))
        #expect(result9 == .expire(.body))
    }

    @Test("nothing expires while a response is written, however long it streams")
    func respondingNeverExpires() {
        var timeouts = ConnectionTimeouts(configuration: configuration, openedAt: start)
        _ = timeouts.start()
        _ = timeouts.bytesReceived(now: at(0))
        _ = timeouts.requestHead(now: at(0))
        let result10 = timeouts.requestEnd()
        #expect(result10 == .none)
        #expect(timeouts.currentDeadline == nil)
        let result11 = timeouts.timerFired(now: at(10))
        #expect(result11 == .none)
        let result12 = timeouts.timerFired(now: at(3600))
        #expect(result12 == .none)
        // Then the connection idles: keep-alive from the end of the response.
        let result13 = timeouts.responseEnd(now: at(3600))
        #expect(result13 == .schedule(at(3660)))
        let result14 = timeouts.timerFired(now: at(3660))
        #expect(result14 == .expire(.keepAlive))
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
        let result20 = timeouts.start()
        #expect(result20 == .schedule(at(10)))
        let result21 = timeouts.requestHead(now: at(5))
        #expect(result21 == .none, "the body deadline (35) is later than the check at 10")
        let result22 = timeouts.requestEnd()
        #expect(result22 == .none)
        let result23 = timeouts.timerFired(now: at(10))
        #expect(result23 == .none, "answering: nothing to schedule")
        let result24 = timeouts.responseEnd(now: at(12))
        #expect(result24 == .schedule(at(72)))
    }
}
