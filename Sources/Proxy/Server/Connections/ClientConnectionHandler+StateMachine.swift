import Providers

extension ClientConnectionHandler {
    /// The HTTP/1.1 exchange on one client connection, as the connection handler sees it:
    /// which request is being read, which responses are owed, and when Switchyard must
    /// answer a request itself (malformed, or announcing a body too large) or close.
    /// A value type whose methods return what the handler must do; no I/O.
    struct StateMachine {
        /// Largest request body accepted; a larger one announced up front is refused
        /// before it is sent.
        let maximumBodyBytes: Int

        /// A request head has been passed on and its end not yet.
        private(set) var readingRequest = false
        /// Requests passed on whose response has not ended.
        private(set) var unansweredRequests = 0
        /// The connection closes once this many more responses have ended (1: the one in
        /// progress); nil while it stays open.
        private var responsesUntilClose: Int?
        /// Switchyard's own answer, written once the responses owed are written.
        private var pendingRejection: OpenAIError?
        /// A `100 Continue` owed to a request whose turn has not come.
        private var pendingContinue = false
        /// Switchyard has decided to close: nothing more is read or answered.
        private(set) var isClosing = false
        /// Bytes read from the socket, and body bytes decoded from them, while the request
        /// in progress was read: their difference is chunked framing and extensions, which
        /// count against no body limit and must stay small.
        private var bytesReadForRequest = 0
        private var bodyBytesDecoded = 0

        /// Framing beyond this (plus half the body) is not a client sending a body but one
        /// sending chunk extensions or padding endlessly.
        static let framingAllowance = 16 << 10

        /// Whether what the client sends is still read: not once Switchyard closes or has
        /// an answer of its own waiting.
        private var readsInput: Bool { !isClosing && pendingRejection == nil }

        init(maximumBodyBytes: Int) {
            self.maximumBodyBytes = maximumBodyBytes
        }

        // MARK: Inbound

        enum HeadAction: Equatable {
            case forward
            /// Tell the client to send its body, then pass the head on.
            case forwardAfterContinue
            /// Answer with this error and close; the request is not passed on.
            case reject(OpenAIError)
            case drop
        }

        /// A request head was decoded.
        /// - Parameters:
        ///   - expect: The `expect` header, if any.
        ///   - contentLength: The announced body length, if any.
        mutating func requestHead(method: String, expect: String?, contentLength: Int?) -> HeadAction {
            guard readsInput else { return .drop }
            if method == "CONNECT" {
                // A tunnel's bytes after the head are not HTTP; Switchyard is no forward proxy.
                return reject(OpenAIError(
                    status: 501,
                    message: "CONNECT is not supported: Switchyard is not a forward proxy.",
                    type: "invalid_request_error",
                    code: "method_not_implemented"
                )).headAction
            }
            if let contentLength, contentLength > maximumBodyBytes {
                // Reading a body only to refuse it wastes both sides' time.
                return reject(.bodyTooLarge(limit: maximumBodyBytes)).headAction
            }
            var continueNow = false
            if let expect {
                guard expect.lowercased() == "100-continue" else {
                    return reject(OpenAIError(
                        status: 417,
                        message: "Only 'Expect: 100-continue' is supported, not '\(expect)'.",
                        type: "invalid_request_error",
                        code: "expectation_failed"
                    )).headAction
                }
                // A 100 Continue written while another response is in progress would
                // land inside it: it waits for its turn.
                if unansweredRequests == 0 { continueNow = true } else { pendingContinue = true }
            }
            readingRequest = true
            unansweredRequests += 1
            bytesReadForRequest = 0
            bodyBytesDecoded = 0
            return continueNow ? .forwardAfterContinue : .forward
        }

        /// Whether a body part or end may be passed on.
        /// - Parameter bodyBytes: The decoded bytes of a body part.
        mutating func requestPart(isEnd: Bool, bodyBytes: Int = 0) -> Bool {
            guard readsInput else { return false }
            bodyBytesDecoded += bodyBytes
            if isEnd { readingRequest = false }
            return true
        }

        /// `count` bytes were read from the client. Returns what to do when the request in
        /// progress carries far more framing than body.
        mutating func bytesRead(_ count: Int) -> ErrorAction {
            guard readsInput, readingRequest else { return .none }
            // These bytes are not decoded yet: only what came before them is weighed.
            defer { bytesReadForRequest += count }
            guard bytesReadForRequest - bodyBytesDecoded > Self.framingAllowance + bodyBytesDecoded / 2 else { return .none }
            return malformedRequest(OpenAIError(
                status: 400,
                message: "The request could not be read: its chunk extensions or framing are far larger than its body.",
                type: "invalid_request_error",
                code: "malformed_request"
            ))
        }

        enum ErrorAction: Equatable {
            /// Fail the request being read with the error; its answer closes the connection.
            case propagate(OpenAIError)
            /// Answer with this error and close.
            case reject(OpenAIError)
            case close
            /// Nothing now: the answer waits for the responses owed, or Switchyard is closing.
            case none
        }

        /// The client sent something that is not HTTP/1.1; `rejection` is the answer for it.
        mutating func malformedRequest(_ rejection: OpenAIError) -> ErrorAction {
            guard readsInput else { return .none }
            if readingRequest {
                if unansweredRequests == 0 {
                    // Already answered, and what remains of it is garbage.
                    isClosing = true
                    return .close
                }
                // The request being read is the last one owed an answer: the connection
                // closes after that answer, not after an earlier pipelined one.
                closeAfter(responses: unansweredRequests)
                return .propagate(rejection)
            }
            return reject(rejection).errorAction
        }

        enum InputClosedAction: Equatable {
            case none
            case close
            /// The answers owed are still written (a client may half-close after its
            /// request); then the connection closes.
            case closeAfterAnswers
        }

        /// The client closed its side.
        mutating func inputClosed() -> InputClosedAction {
            guard !isClosing else { return .none }
            guard unansweredRequests > 0, !readingRequest else {
                isClosing = true
                return .close
            }
            closeAfter(responses: unansweredRequests)
            // Nothing more will be read.
            pendingRejection = nil
            return .closeAfterAnswers
        }

        private mutating func closeAfter(responses count: Int) {
            responsesUntilClose = min(responsesUntilClose ?? count, count)
        }

        // MARK: Outbound

        /// A response head is being written. Returns whether the connection closes after
        /// this response, so the head can say so.
        mutating func responseHead(isInformational: Bool, closesConnection: Bool) -> Bool {
            guard !isInformational else { return false }
            // Answering a request whose body is still being read: its rest is not read.
            if closesConnection || (readingRequest && unansweredRequests <= 1) { closeAfter(responses: 1) }
            return responsesUntilClose == 1 || isClosing
        }

        enum EndAction: Equatable {
            case none
            case writeContinue
            case reject(OpenAIError)
            /// Close, letting the client read what was written.
            case close
        }

        /// A response was written to its end.
        mutating func responseEnd() -> EndAction {
            unansweredRequests = max(0, unansweredRequests - 1)
            guard !isClosing else { return .none }
            if let remaining = responsesUntilClose {
                responsesUntilClose = remaining - 1
                if remaining <= 1 {
                    isClosing = true
                    return .close
                }
            }
            // Answered before its body was read (a refusal): the rest of it is not worth
            // reading, and the connection cannot be reused without reading it.
            if readingRequest && unansweredRequests == 0 {
                isClosing = true
                return .close
            }
            if unansweredRequests == 0, let pendingRejection {
                isClosing = true
                return .reject(pendingRejection)
            }
            if pendingContinue, unansweredRequests == 1 {
                pendingContinue = false
                return .writeContinue
            }
            return .none
        }

        // MARK: Rejections

        private enum RejectAction {
            case now(OpenAIError)
            case later

            var headAction: HeadAction {
                switch self {
                case .now(let error): .reject(error)
                case .later: .drop
                }
            }

            var errorAction: ErrorAction {
                switch self {
                case .now(let error): .reject(error)
                case .later: .none
                }
            }
        }

        /// Switchyard answers `error` and closes: now, or once the responses owed are written.
        private mutating func reject(_ error: OpenAIError) -> RejectAction {
            if unansweredRequests == 0 {
                isClosing = true
                return .now(error)
            }
            pendingRejection = pendingRejection ?? error
            // Nothing after the bad request is read; the answers owed are still written.
            readingRequest = false
            return .later
        }
    }
}
