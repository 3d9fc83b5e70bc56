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
        let step1 = machine.requestHead(method: "POST", expect: nil, contentLength: 10)
        #expect(step1 == .forward)
        let step2 = machine.requestPart(isEnd: false)
        #expect(step2)
        let step3 = machine.requestPart(isEnd: true)
        #expect(step3)
        let step4 = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(!step4)
        let step5 = machine.responseEnd()
        #expect(step5 == .none)
        #expect(!machine.isClosing)
    }

    @Test("Expect: 100-continue is answered at once, or refused with 413 when the body is too large")
    func expectContinue() {
        var machine = Machine(maximumBodyBytes: 100)
        let step6 = machine.requestHead(method: "POST", expect: "100-Continue", contentLength: 100)
        #expect(step6 == .forwardAfterContinue)

        var tooLarge = Machine(maximumBodyBytes: 100)
        guard case .reject(let error) = tooLarge.requestHead(method: "POST", expect: "100-continue", contentLength: 101) else {
            Issue.record("not refused")
            return
        }
        #expect(error.status == 413)
        #expect(tooLarge.isClosing)
        let step7 = tooLarge.requestPart(isEnd: true)
        #expect(step7 == false, "nothing more is read")

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
        let step8 = machine.requestHead(method: "POST", expect: nil, contentLength: 0)
        #expect(step8 == .forward)
        let step9 = machine.requestPart(isEnd: true)
        #expect(step9)
        let step10 = machine.requestHead(method: "POST", expect: "100-continue", contentLength: 5)
        #expect(step10 == .forward)
        let step11 = machine.responseEnd()
        #expect(step11 == .writeContinue)
    }

    @Test("garbage between requests is answered by Switchyard, after the response owed")
    func malformedBetweenRequests() {
        var idle = Machine(maximumBodyBytes: 100)
        let step12 = idle.malformedRequest(malformed)
        #expect(step12 == .reject(malformed))
        #expect(idle.isClosing)

        var busy = Machine(maximumBodyBytes: 100)
        _ = busy.requestHead(method: "POST", expect: nil, contentLength: 0)
        _ = busy.requestPart(isEnd: true)
        let step13 = busy.malformedRequest(malformed)
        #expect(step13 == .none, "the response in progress is not interrupted")
        let step14 = busy.requestHead(method: "POST", expect: nil, contentLength: 0)
        #expect(step14 == .drop, "nothing after the garbage is read")
        let step15 = busy.responseEnd()
        #expect(step15 == .reject(malformed))
    }

    @Test("a malformed body fails the request reading it, whose answer closes the connection")
    func malformedBody() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: nil)
        let step16 = machine.malformedRequest(malformed)
        #expect(step16 == .propagate(malformed))
        let step17 = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(step17, "the head says it closes")
        let step18 = machine.responseEnd()
        #expect(step18 == .close)
    }

    @Test("a request answered before its body was read closes the connection instead of draining it")
    func earlyAnswer() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: 50)
        let step19 = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(step19)
        let step20 = machine.responseEnd()
        #expect(step20 == .close)
        let step21 = machine.requestPart(isEnd: false)
        #expect(step21 == false)
    }

    @Test("connection: close on a response closes after it; the client closing its side closes at once")
    func closing() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: 0)
        _ = machine.requestPart(isEnd: true)
        let step22 = machine.responseHead(isInformational: true, closesConnection: true)
        #expect(!step22, "a 100 Continue closes nothing")
        let step23 = machine.responseHead(isInformational: false, closesConnection: true)
        #expect(step23)
        let step24 = machine.responseEnd()
        #expect(step24 == .close)

        var left = Machine(maximumBodyBytes: 100)
        let step25 = left.inputClosed()
        #expect(step25 == .close, "nothing owed: close at once")
        let step26 = left.inputClosed()
        #expect(step26 == .none, "once")
    }

    @Test("a client that half-closes after its request still gets the answer owed, then the connection closes")
    func halfClose() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "GET", expect: nil, contentLength: nil)
        _ = machine.requestPart(isEnd: true)
        let closed = machine.inputClosed()
        #expect(closed == .closeAfterAnswers)
        let head = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(head, "the head says the connection closes")
        let end = machine.responseEnd()
        #expect(end == .close)
    }

    @Test("a malformed pipelined body closes the connection after its own answer, not the one before it")
    func malformedPipelinedBody() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "GET", expect: nil, contentLength: nil)
        _ = machine.requestPart(isEnd: true)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: nil)
        let failed = machine.malformedRequest(malformed)
        #expect(failed == .propagate(malformed))
        let firstHead = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(!firstHead, "the first answer keeps the connection")
        let first = machine.responseEnd()
        #expect(first == .none)
        let secondHead = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(secondHead)
        let second = machine.responseEnd()
        #expect(second == .close)
    }

    @Test("a response that said it closes does close, even when the request's end arrives in between")
    func headDecisionIsKept() {
        var machine = Machine(maximumBodyBytes: 100)
        _ = machine.requestHead(method: "POST", expect: nil, contentLength: 10)
        let head = machine.responseHead(isInformational: false, closesConnection: false)
        #expect(head)
        _ = machine.requestPart(isEnd: true)
        let end = machine.responseEnd()
        #expect(end == .close)
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

