import Providers
import Testing

@testable import Proxy

@Suite("Client connection exchange")
struct ClientConnectionHandlerStateMachineTests {
    typealias Machine = ClientConnectionHandler.StateMachine
    private let malformed = OpenAIError(status: 400, message: "bad", type: "invalid_request_error", code: "malformed_request")

    @Test("an ordinary exchange passes through and keeps the connection")
    func ordinaryExchange() {
        var machine = Machine(maximumBodyBytes: 100)
        let result1 = machine.requestHead(method: "POST", expect: nil, contentLength: 10)
        #expect(result1 == .forward)
        let result2 = machine.requestPart(isEnd: false)
        #expect(result2)
        let result3 = machine.requestPart(isEnd: true)
        #expect(result3)
        let result4 = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(!result4)
        let result5 = machine.responseEnd()
        #expect(result5 == .none)
        #expect(!machine.isClosing)
    }

    @Test("Expect: 100-continue is answered at once, or refused with 413 when the body is too large")
    func expectContinue() {
        var machine = Machine(maximumBodyBytes: 100)
        let result6 = machine.requestHead(method: "POST", expect: "100-Continue", contentLength: 100)
        #expect(result6 == .forwardAfterContinue)

        var tooLarge = Machine(maximumBodyBytes: 100)
        guard case .reject(let error) = tooLarge.requestHead(method: "POST", expect: "100-continue", contentLength: 101) else {
            Issue.record("not refused")
            return
        }
        #expect(error.status == 413)
        #expect(tooLarge.isClosing)
        let result7 = tooLarge.requestPart(isEnd: true)
        #expect(result7 == false, "nothing more is read")

        var unknown = Machine(maximumBodyBytes: 100)
        guard case .reject(let expectation) = unknown.requestHead(method: "POST", expect: "something-else", contentLength: nil) else {
            Issue.record("not refused")
            return
        }
        #expect(expectation.status == 417)
    }

    @Test("a body announced too large is refused before it is read, with or without Expect")
    func announcedTooLarge() {
        var machine = Machine(maximumBodyBytes: 100)
        guard case .reject(let error) = machine.requestHead(method: "POST", expect: nil, contentLength: 1 << 40) else {
            Issue.record("not refused")
            return
        }
        #expect(error.status == 413)
    }

    @Test("a 100 Continue for a pipelined request waits for the response in progress")
    func pipelinedContinue() {
        var machine = Machine(maximumBodyBytes: 100)
        let result8 = machine.requestHead(method: "POST", expect: nil, contentLength: 0)
        #expect(result8 == .forward)
        let result9 = machine.requestPart(isEnd: true)
        #expect(result9)
        let result10 = machine.requestHead(method: "POST", expect: "100-continue", contentLength: 5)
        #expect(result10 == .forward)
        let result11 = machine.responseEnd()
        #expect(result11 == .writeContinue)
    }

    @Test("garbage between requests is answered by Switchyard, after the response owed")
    func malformedBetweenRequests() {
        var idle = Machine(maximumBodyBytes: 100)
        let result12 = idle.malformedRequest(malformed)
        #expect(result12 == .reject(malformed))
        #expect(idle.isClosing)

        var busy = Machine(maximumBodyBytes: 100)
        _ = busy.requestHead(method: "POST", expect: nil, contentLength: 0)
        _ = busy.requestPart(isEnd: true)
        let result13 = busy.malformedRequest(malformed)
        #expect(result13 == .none, "the response in progress is not interrupted")
        let result14 = busy.requestHead(method: "POST", expect: nil, contentLength: 0)
        #expect(result14 == .drop, "nothing after the garbage is read")
        let result15 = busy.responseEnd()
        #expect(result15 == .reject(malformed))
    }

    @Test("a malformed body fails the request reading it, whose answer closes the connection")
    func malformedBody() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: nil)
        let result16 = machine.malformedRequest(malformed)
        #expect(result16 == .propagate(malformed))
        let result17 = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(result17, "the head says it closes")
        let result18 = machine.responseEnd()
        #expect(result18 == .close)
    }

    @Test("a request answered before its body was read closes the connection instead of draining it")
    func earlyAnswer() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: 50)
        let result19 = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(result19)
        let result20 = machine.responseEnd()
        #expect(result20 == .close)
        let result21 = machine.requestPart(isEnd: false)
        #expect(result21 == false)
    }

    @Test("connection: close on a response closes after it; the client closing its side closes at once")
    func closing() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: 0)
        _ = machine.requestPart(isEnd: true)
        let result22 = machine.responseHead(isInformational: true, closesConnection: true)
        #expect(!result22, "a 100 Continue closes nothing")
        let result23 = machine.responseHead(isInformational: false, closesConnection: true)
        #expect(result23)
        let result24 = machine.responseEnd()
        #expect(result24 == .close)

        var left = Machine(maximumBodyBytes: 100)
        let result25 = left.inputClosed()
        #expect(result25)
        let result26 = left.inputClosed()
        #expect(!result26, "once")
    }

    @Test("a body whose framing outweighs it (endless chunk extensions) is refused")
    func framingOverhead() {
        var machine = Machine(maximumBodyBytes: 1 << 20)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: nil)
        _ = machine.requestPart(isEnd: false, bodyBytes: 1000)
        var action = machine.bytesRead(1000 + Machine.framingAllowance + 1000)
        #expect(action == .none, "not yet decoded")
        action = machine.bytesRead(1)
        guard case .propagate(let error) = action else {
            Issue.record("not refused: \(action)")
            return
        }
        #expect(error.status == 400)

        var honest = Machine(maximumBodyBytes: 1 << 20)
        _ = honest.requestHead(method: "POST", expect: nil, contentLength: nil)
        for _ in 0..<1000 {
            _ = honest.requestPart(isEnd: false, bodyBytes: 4096)
            let read = honest.bytesRead(4096 + 8)
            #expect(read == .none)
        }
    }
}

