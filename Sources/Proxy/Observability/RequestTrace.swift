import Billing
import HTTPTypes
import NIOHTTP1
import Providers
import Synchronization
import Tracing

/// The spans of one inference request on the data plane, made only when tracing is on:
/// a server span for the request (continuing the client's `traceparent`), and within it
/// `authenticate`, `admission`, `queue wait`, one client span per upstream attempt (a
/// failed one says why in `switchyard.failover.reason`) and `relay`, from the answer's
/// first byte to its end. Attributes follow the OpenTelemetry GenAI conventions
/// (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.model`,
/// `gen_ai.provider.name`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`).
/// Each upstream request carries the attempt's `traceparent`.
final class RequestTrace: Sendable {
    private struct Open {
        var phase: (any Span)?
        var attempt: (any Span)?
        var relay: (any Span)?
        var ended = false
    }

    private let tracer: any Tracer
    private let server: any Span
    /// Whether the request was sampled: an unsampled one makes no child spans, and hands
    /// the upstream its own (unsampled) context.
    private let recording: Bool
    private let operation: String
    private let open = Mutex(Open())

    init(tracer: any Tracer, request: HTTPRequest, endpoint: InferenceEndpoint, requestID: String) {
        self.tracer = tracer
        self.operation = Self.operationName(endpoint)
        var context = ServiceContext.topLevel
        tracer.extract(request.headerFields, into: &context, using: HTTPFieldsExtractor())
        let server = tracer.startSpan("\(operation)", context: context, ofKind: .server)
        server.attributes["gen_ai.operation.name"] = operation
        server.attributes["http.request.method"] = request.method.rawValue
        server.attributes["url.path"] = request.path.map { String($0.prefix { $0 != "?" }) } ?? ""
        server.attributes["switchyard.request_id"] = requestID
        self.server = server
        self.recording = server.isRecording
    }

    /// `chat`, `text_completion` or `embeddings`, as the conventions name them.
    static func operationName(_ endpoint: InferenceEndpoint) -> String {
        switch endpoint {
        case .chatCompletions: "chat"
        case .completions: "text_completion"
        case .embeddings: "embeddings"
        }
    }

    // MARK: Phases

    /// Starts `name` (`authenticate`, `admission`, `queue wait`), ending any phase open.
    func begin(_ name: String) {
        guard recording else { return }
        let span = tracer.startSpan(name, context: server.context, ofKind: .internal)
        let (previous, ended) = open.withLock { state -> ((any Span)?, Bool) in
            let previous = state.phase
            state.phase = state.ended ? nil : span
            return (previous, state.ended)
        }
        previous?.end()
        if ended { span.end() }
    }

    /// Ends the phase open, if any.
    func endPhase() {
        open.withLock { state -> (any Span)? in
            defer { state.phase = nil }
            return state.phase
        }?.end()
    }

    /// Who is asking, once the key is known.
    func authenticated(_ tenant: AuthenticatedTenant) {
        server.attributes["switchyard.tenant_id"] = tenant.tenantID
        server.attributes["switchyard.tier"] = tenant.tier
        endPhase()
    }

    /// What is asked, once the body is read.
    func requested(model: String, stream: Bool) {
        server.operationName = "\(operation) \(model)"
        server.attributes["gen_ai.request.model"] = model
        server.attributes["switchyard.stream"] = stream
    }

    // MARK: Attempts

    /// Starts an upstream attempt and writes its `traceparent` into the upstream request.
    func attemptStarted(_ deployment: Topology.Deployment, headers: inout HTTPHeaders) {
        guard recording else {
            tracer.inject(server.context, into: &headers, using: HTTPHeadersInjector())
            return
        }
        let span = tracer.startSpan("\(operation) \(deployment.upstreamModel)", context: server.context, ofKind: .client)
        span.attributes["gen_ai.operation.name"] = operation
        span.attributes["gen_ai.request.model"] = deployment.upstreamModel
        span.attributes["gen_ai.provider.name"] = deployment.providerID
        span.attributes["switchyard.deployment"] = deployment.id
        if let pool = deployment.enginePool { span.attributes["switchyard.engine_pool"] = pool.name }
        tracer.inject(span.context, into: &headers, using: HTTPHeadersInjector())
        let (previous, ended) = open.withLock { state -> ((any Span)?, Bool) in
            defer { state.attempt = state.ended ? nil : span }
            return (state.attempt, state.ended)
        }
        previous?.end()
        if ended { span.end() }
    }

    /// The attempt failed before an answer: the route fails over, or gives up.
    func attemptFailed(reason: String) {
        guard let span = open.withLock({ state -> (any Span)? in
            defer { state.attempt = nil }
            return state.attempt
        }) else { return }
        span.attributes["switchyard.failover.reason"] = reason
        span.setStatus(SpanStatus(code: .error, message: reason))
        span.end()
    }

    /// The upstream's answer has begun: its attempt is over, the relay starts.
    func answerStarted(status: Int, deployment: Topology.Deployment) {
        guard recording else { return }
        let relay = tracer.startSpan("relay", context: server.context, ofKind: .internal)
        let (attempt, ended) = open.withLock { state -> ((any Span)?, Bool) in
            defer {
                state.attempt = nil
                state.relay = state.ended ? nil : relay
            }
            return (state.attempt, state.ended)
        }
        if ended { relay.end() }
        attempt?.attributes["http.response.status_code"] = status
        attempt?.attributes["gen_ai.response.model"] = deployment.upstreamModel
        attempt?.end()
        server.attributes["gen_ai.provider.name"] = deployment.providerID
        server.attributes["switchyard.deployment"] = deployment.id
    }

    // MARK: The end

    /// The request was metered: the usage goes on the request's span, which ends.
    func finished(_ event: UsageEvent) {
        server.attributes["gen_ai.response.model"] = event.model
        server.attributes["gen_ai.usage.input_tokens"] = event.promptTokens
        server.attributes["gen_ai.usage.output_tokens"] = event.completionTokens
        if let error = event.errorType { server.attributes["error.type"] = error }
        end(status: event.status)
    }

    /// The request was answered before it was admitted.
    func refused(status: Int, errorType: String?) {
        if let errorType { server.attributes["error.type"] = errorType }
        end(status: status)
    }

    private func end(status: Int) {
        let spans = open.withLock { state -> [any Span]? in
            guard !state.ended else { return nil }
            state.ended = true
            defer { state = Open(ended: true) }
            return [state.relay, state.attempt, state.phase].compactMap { $0 }
        }
        guard let spans else { return }
        for span in spans { span.end() }
        server.attributes["http.response.status_code"] = status
        if status >= 500 { server.setStatus(SpanStatus(code: .error)) }
        server.end()
    }
}

/// Reads W3C trace context (`traceparent`, `tracestate`) from a request's headers.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

/// Writes trace context into an upstream request's headers.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}
