/// One deployment a request may be sent to, as routing sees it.
public struct RouteCandidate: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A self-hosted engine pool with this many replicas.
        case engine(replicas: Int)
        /// An external provider: each attempt draws a key from its pool.
        case keyPool
    }

    /// The deployment's id.
    public var id: String
    public var kind: Kind
    public var inputPricePerMillion: Int64
    public var outputPricePerMillion: Int64
    /// Whether the provider has a key at all (an engine always can serve).
    public var hasKeys: Bool

    public init(id: String, kind: Kind, inputPricePerMillion: Int64 = 0, outputPricePerMillion: Int64 = 0, hasKeys: Bool = true) {
        self.id = id
        self.kind = kind
        self.inputPricePerMillion = inputPricePerMillion
        self.outputPricePerMillion = outputPricePerMillion
        self.hasKeys = hasKeys
    }

    public var isEngine: Bool {
        if case .engine = kind { true } else { false }
    }

    /// The price of a request as it is expected to be, in micro-units (unrounded; for ranking).
    public func expectedCost(promptTokens: Int, outputTokens: Int) -> Double {
        (Double(promptTokens) * Double(inputPricePerMillion) + Double(outputTokens) * Double(outputPricePerMillion)) / 1e6
    }

    /// The blended price per million tokens, three input tokens to one output token: what
    /// a contract's `max_spill_price_per_million` is compared with.
    public var blendedPricePerMillion: Int64 {
        (3 * inputPricePerMillion + outputPricePerMillion) / 4
    }
}

/// The route of one request, as a state machine: which deployment, replica or key to try
/// next, given what each step came to. Failover, spill-over and the answer when nothing is
/// left are decided here; the pipeline only carries the actions out.
///
/// At most `maximumAttempts` upstream attempts in all, and only before any byte of an
/// answer reaches the client. An engine pool's replicas, or a provider's keys, are tried
/// before the next deployment. A saturated engine pool waits, refuses, or (when the
/// contract allows) lets the request spill over to the providers after it first.
public struct RoutePlan<Failure: Sendable>: Sendable {
    public enum Routing: Sendable, Equatable {
        /// The routes in their configured order.
        case ordered
        /// By the request's expected price, cheapest first (ties keep their order).
        case cost
    }

    /// What the pipeline does next.
    public enum Action: Sendable {
        /// Ask the engine pool of `candidate` whether it is saturated for this request;
        /// answer with `record(saturated:)`.
        case weighSpillOver(RouteCandidate)
        /// Find an upstream on `candidate`: an engine slot (waiting for one by contract),
        /// or a key of the provider not among `excludingKeys`; answer with `record(placement:)`.
        case place(RouteCandidate, excludingKeys: Set<String>, spilled: Bool)
        /// Send the request on the placement found; answer with `record(attempt:)`.
        case attempt(RouteCandidate)
        /// The route ended.
        case finish(Ending)
    }

    /// How a route ends.
    public enum Ending: Sendable {
        /// An upstream answered; its answer is being relayed.
        case answered(RouteCandidate, spilled: Bool)
        /// Answer the upstream's error as it is (not worth another attempt).
        case relayError(Failure, RouteCandidate)
        /// No engine slot within the contract's wait: 503 capacity_exhausted.
        case capacityExhausted(RouteCandidate, predictedStart: Duration?)
        /// Nothing could serve: answer the last failure, with the soonest retry time any
        /// provider gave. `last` is the last deployment an attempt was made on.
        case failed(Failure, retryAfter: Duration?, last: RouteCandidate?)
        /// The client left: while the request waited for an upstream, or (`sent`) once it
        /// had been sent, when the upstream may have read the prompt.
        case cancelled(RouteCandidate, sent: Bool)
        /// The shutdown's grace period ran out.
        case shuttingDown(RouteCandidate)
    }

    /// What finding an upstream came to.
    public enum Placement: Sendable {
        /// Placed; `key` is the provider key chosen (nil for an engine slot).
        case placed(key: String?)
        /// Every replica of the engine pool was tried.
        case exhausted
        /// No key of the provider can take the request (now, or at all).
        case unavailable(Failure, retryAfter: Duration?)
        /// The engine pool has no slot within the contract's longest wait.
        case saturated(predictedStart: Duration?)
        case cancelled
    }

    /// What one upstream attempt came to.
    public enum Attempt: Sendable {
        case answered
        /// The request could not be built for this deployment.
        case notSent(Failure)
        /// The upstream could not be reached.
        case unreachable(Failure)
        /// The provider refused the key (rate limited, overloaded, credentials rejected).
        case keyRefused(Failure)
        /// The upstream answered with an error; `retryable` when another upstream may do better.
        case refused(Failure, retryable: Bool)
        case cancelled
        case shuttingDown
    }

    /// The candidates in the order they are tried (spill-over reorders them).
    public private(set) var order: [RouteCandidate]
    public let maximumAttempts: Int
    private let contract: Contract
    private var index = 0
    private var attempts = 0
    private var failure: Failure
    private var retryAfter: Duration?
    private var last: RouteCandidate?
    private var spilledTo: Set<String> = []
    /// Engine deployments whose spill-over was weighed: the request waits for them now.
    private var weighed: Set<String> = []
    private var tried = Tried()
    private var step = Step.choose

    /// What the request has tried of the current candidate.
    private struct Tried {
        var keys: Set<String> = []
        var replicas = 0
        /// Attempts that failed on the provider's side (unreachable, 5xx), not the key's.
        var serverFailures = 0
    }

    private enum Step {
        case choose
        case weighing
        case placing
        case attempting
        case finished
    }

    /// - Parameters:
    ///   - model: The public model asked for; a contract's pinning of it leaves only the
    ///     pinned deployment.
    ///   - candidates: The model's deployments able to serve the request, as configured.
    ///   - noRoute: The failure to answer when nothing was even tried.
    public init(
        model: String,
        candidates: [RouteCandidate],
        contract: Contract,
        routing: Routing = .ordered,
        promptTokens: Int = 0,
        outputTokens: Int = 0,
        noRoute: Failure,
        maximumAttempts: Int = 4
    ) {
        var order = candidates
        if let pinned = contract.pinning[model] {
            order = candidates.filter { $0.id == pinned }
        } else if routing == .cost {
            order = candidates.enumerated().sorted { lhs, rhs in
                let left = lhs.element.expectedCost(promptTokens: promptTokens, outputTokens: outputTokens)
                let right = rhs.element.expectedCost(promptTokens: promptTokens, outputTokens: outputTokens)
                return left != right ? left < right : lhs.offset < rhs.offset
            }.map(\.element)
        }
        self.order = order
        self.contract = contract
        self.failure = noRoute
        self.maximumAttempts = maximumAttempts
    }

    /// Whether no candidate is left (a pinning that names no serving deployment).
    public var isEmpty: Bool { order.isEmpty }

    // MARK: Actions

    /// The next thing to do.
    public mutating func next() -> Action {
        switch step {
        case .finished, .weighing, .attempting:
            preconditionFailure("RoutePlan.next() called while an outcome is awaited or after the end")
        case .placing:
            return place()
        case .choose:
            guard index < order.count, attempts < maximumAttempts else { return finish(.failed(failure, retryAfter: retryAfter, last: last)) }
            let candidate = order[index]
            tried = Tried()
            if candidate.isEngine, !weighed.contains(candidate.id), !spillTargets(after: index).isEmpty {
                step = .weighing
                return .weighSpillOver(candidate)
            }
            return place()
        }
    }

    private mutating func place() -> Action {
        guard attempts < maximumAttempts else { return finish(.failed(failure, retryAfter: retryAfter, last: last)) }
        step = .placing
        let candidate = order[index]
        if case .engine(let replicas) = candidate.kind, tried.replicas >= replicas {
            return nextCandidate()
        }
        return .place(candidate, excludingKeys: tried.keys, spilled: spilledTo.contains(candidate.id))
    }

    /// The providers after `position` that a request of this contract may spill over to:
    /// with keys, within the contract's spill price.
    private func spillTargets(after position: Int) -> [RouteCandidate] {
        guard contract.spillOver == .whenSaturated else { return [] }
        return order[(position + 1)...].filter { candidate in
            guard !candidate.isEngine, candidate.hasKeys else { return false }
            guard let ceiling = contract.maximumSpillPricePerMillion else { return true }
            return candidate.blendedPricePerMillion <= Int64(ceiling)
        }
    }

    private mutating func nextCandidate() -> Action {
        index += 1
        step = .choose
        return next()
    }

    private mutating func finish(_ ending: Ending) -> Action {
        step = .finished
        return .finish(ending)
    }

    // MARK: Outcomes

    /// Whether the engine pool is saturated for the request (its predicted start later
    /// than the contract's `spill_after_ms`): if so the request goes to the providers
    /// after it first, and back to the pool's queue when none has room.
    public mutating func record(saturated: Bool) -> Action {
        precondition(step == .weighing, "no spill-over was being weighed")
        let engine = order[index]
        weighed.insert(engine.id)
        guard saturated else { return place() }
        let targets = spillTargets(after: index)
        let moved = Set(targets.map(\.id))
        let rest = order[(index + 1)...].filter { !moved.contains($0.id) }
        order = Array(order[..<index]) + targets + [engine] + rest
        spilledTo.formUnion(moved)
        step = .choose
        return next()
    }

    /// What finding an upstream came to.
    public mutating func record(placement: Placement) -> Action {
        precondition(step == .placing, "no placement was asked for")
        let candidate = order[index]
        switch placement {
        case .placed(let key):
            if let key { tried.keys.insert(key) }
            if candidate.isEngine { tried.replicas += 1 }
            attempts += 1
            last = candidate
            step = .attempting
            return .attempt(candidate)
        case .exhausted:
            return nextCandidate()
        case .cancelled:
            return finish(.cancelled(candidate, sent: false))
        case .unavailable(let error, let after):
            // An upstream's own error says more than "no key left", except when no
            // upstream was tried.
            if attempts == 0 { failure = error }
            if let after { retryAfter = min(retryAfter ?? after, after) }
            return nextCandidate()
        case .saturated(let predictedStart):
            // Another engine pool of the model may have room; a provider only through
            // spill-over, which was weighed before.
            if order[(index + 1)...].contains(where: \.isEngine) { return nextCandidate() }
            return finish(.capacityExhausted(candidate, predictedStart: predictedStart))
        }
    }

    /// What one upstream attempt came to.
    public mutating func record(attempt: Attempt) -> Action {
        precondition(step == .attempting, "no attempt was made")
        let candidate = order[index]
        let isLast = index == order.count - 1
        switch attempt {
        case .answered:
            return finish(.answered(candidate, spilled: spilledTo.contains(candidate.id)))
        case .notSent(let error):
            failure = error
            return nextCandidate()
        case .cancelled:
            return finish(.cancelled(candidate, sent: true))
        case .shuttingDown:
            return finish(.shuttingDown(candidate))
        case .keyRefused(let error):
            // The key, not the provider, is at fault: the provider's next key.
            failure = error
            return place()
        case .unreachable(let error):
            failure = error
            if !candidate.isEngine, !isLast, tried.serverFailures > 0 { return nextCandidate() }
            tried.serverFailures += 1
            return place()
        case .refused(let error, let retryable):
            guard retryable, attempts < maximumAttempts, !candidate.isEngine || !isLast else {
                return finish(.relayError(error, candidate))
            }
            failure = error
            // A server error is the provider's more than the key's: one more of its keys,
            // then the next deployment (the last one keeps trying keys).
            if !candidate.isEngine, isLast || tried.serverFailures == 0 {
                tried.serverFailures += 1
                return place()
            }
            return nextCandidate()
        }
    }
}
