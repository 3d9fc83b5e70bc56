/// The route of one request, as a state machine: which deployment, replica or key to try
/// next, given what each step came to. Failover, spill-over and the answer when nothing is
/// left are decided here; the pipeline only carries the actions out.
///
/// At most `maximumAttempts` upstream attempts in all, and only before any byte of an
/// answer reaches the client. An engine pool's replicas, or a provider's keys, are tried
/// before the next deployment. A saturated engine pool waits, refuses, or (when the
/// contract allows) lets the request spill over to the providers after it first. When
/// nothing is left to try but a key the provider rate-limited for a short delay and
/// invited a retry on, the plan waits that delay and tries the key's deployment again.
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
        /// Wait this long (a provider's short delay before a rate-limited key may be tried
        /// again), unless the client leaves or the server shuts down; answer with
        /// `record(wait:)`.
        case wait(Duration)
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
        /// Nothing could serve: answer the last failure, with the soonest time a key (of
        /// any deployment tried) can take the request again. `last` is the last deployment
        /// an attempt was made on.
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
        /// The provider rate-limited the key (429, or overloaded), which now cools down for
        /// `cooldown`. `invitesRetry`: the provider named that delay or said to retry, so the
        /// key may be tried again once it has passed.
        case rateLimited(Failure, cooldown: Duration, invitesRetry: Bool)
        /// The provider refused the key's credentials.
        case keyRefused(Failure)
        /// The upstream answered with an error; `retryable` when another upstream may do better.
        case refused(Failure, retryable: Bool)
        case cancelled
        case shuttingDown
    }

    /// What a wait came to.
    public enum Wait: Sendable {
        /// The whole delay passed.
        case elapsed
        /// The client left.
        case cancelled
        /// The server began to shut down: the request is answered rather than retried.
        case shuttingDown
    }

    /// The candidates in the order they are tried (spill-over reorders them).
    public private(set) var order: [RouteCandidate]
    public let maximumAttempts: Int
    /// The longest delay of a provider's that the plan waits out to retry a key.
    public let longestRetryWait: Duration
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
    /// What was tried of the candidates already left behind, by id.
    private var triedBefore: [String: Tried] = [:]
    /// The key placed for the attempt under way.
    private var key: String?
    /// The rate limit to wait out when nothing else is left, if any.
    private var retry: Retry?
    /// After a wait only the deployment waited for is tried again.
    private var resumed = false
    private var step = Step.choose

    /// What the request has tried of one candidate.
    private struct Tried {
        var keys: Set<String> = []
        /// Of `keys`, those the provider rate-limited.
        var rateLimited: Set<String> = []
        var replicas = 0
        /// Attempts that failed on the provider's side (unreachable, 5xx), not the key's.
        var serverFailures = 0
    }

    /// A rate-limited key worth waiting for: its deployment, and the provider's delay.
    private struct Retry {
        var candidate: String
        var delay: Duration
    }

    private enum Step {
        case choose
        case weighing
        case placing
        case attempting
        case waiting
        case finished
    }

    /// - Parameters:
    ///   - model: The public model asked for; a contract's pinning of it leaves only the
    ///     pinned deployment.
    ///   - candidates: The model's deployments able to serve the request, as configured.
    ///   - noRoute: The failure to answer when nothing was even tried.
    ///   - longestRetryWait: The longest delay of a provider's waited out to retry a key
    ///     it rate-limited, when nothing else can take the request.
    public init(
        model: String,
        candidates: [RouteCandidate],
        contract: Contract,
        routing: Routing = .ordered,
        promptTokens: Int = 0,
        outputTokens: Int = 0,
        noRoute: Failure,
        maximumAttempts: Int = 4,
        longestRetryWait: Duration = .seconds(2)
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
        self.longestRetryWait = longestRetryWait
    }

    /// Whether no candidate is left (a pinning that names no serving deployment).
    public var isEmpty: Bool { order.isEmpty }

    // MARK: Actions

    /// The next thing to do.
    public mutating func next() -> Action {
        switch step {
        case .finished, .weighing, .attempting, .waiting:
            preconditionFailure("RoutePlan.next() called while an outcome is awaited or after the end")
        case .placing:
            return place()
        case .choose:
            guard index < order.count, attempts < maximumAttempts else { return fail() }
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
        guard attempts < maximumAttempts else { return fail() }
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
        triedBefore[order[index].id] = tried
        // After a wait, the deployment waited for was the last hope.
        if resumed { return fail() }
        index += 1
        step = .choose
        return next()
    }

    /// Nothing is left to try now: wait for a rate-limited key the provider invited a
    /// retry on, while attempts remain; else the route fails.
    private mutating func fail() -> Action {
        if attempts < maximumAttempts, let retry = retry.take(),
           let position = order.firstIndex(where: { $0.id == retry.candidate }) {
            index = position
            step = .waiting
            return .wait(retry.delay)
        }
        return finish(.failed(failure, retryAfter: retryAfter, last: last))
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
            self.key = key
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
            // upstream was tried; keys that can take the request later say more than
            // keys that never will.
            if attempts == 0, after != nil || retryAfter == nil { failure = error }
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
        case .rateLimited(let error, let cooldown, let invitesRetry):
            // The key, not the provider, is at fault: the provider's next key, and this
            // one again after its delay if nothing else can take the request.
            failure = error
            retryAfter = min(retryAfter ?? cooldown, cooldown)
            if let key { tried.rateLimited.insert(key) }
            if invitesRetry, cooldown <= longestRetryWait, cooldown <= retry?.delay ?? cooldown {
                retry = Retry(candidate: candidate.id, delay: cooldown)
            }
            return place()
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

    /// What waiting for a rate-limited key came to.
    public mutating func record(wait: Wait) -> Action {
        precondition(step == .waiting, "no wait was asked for")
        switch wait {
        case .elapsed:
            // The keys rate-limited here are worth trying again; the retry times
            // gathered so far are past or superseded.
            tried = triedBefore[order[index].id] ?? Tried()
            tried.keys.subtract(tried.rateLimited)
            tried.rateLimited = []
            retryAfter = nil
            resumed = true
            step = .placing
            return place()
        case .cancelled:
            return finish(.cancelled(order[index], sent: false))
        case .shuttingDown:
            return finish(.failed(failure, retryAfter: retryAfter, last: last))
        }
    }
}
