import Testing

@testable import Pools

@Suite("RoutePlan")
struct RoutePlanTests {
    typealias Plan = RoutePlan<String>

    private static let engine = RouteCandidate(id: "engine", kind: .engine(replicas: 2), inputPricePerMillion: 50_000, outputPricePerMillion: 150_000)
    private static let otherEngine = RouteCandidate(id: "engine-b", kind: .engine(replicas: 1))
    private static let cheap = RouteCandidate(id: "cheap", kind: .keyPool, inputPricePerMillion: 150_000, outputPricePerMillion: 600_000)
    private static let dear = RouteCandidate(id: "dear", kind: .keyPool, inputPricePerMillion: 2_500_000, outputPricePerMillion: 10_000_000)
    private static let keyless = RouteCandidate(id: "keyless", kind: .keyPool, hasKeys: false)

    private static let standard = Contract(tier: "standard", band: 10)
    private static var spilling: Contract {
        var contract = Contract(tier: "enterprise", band: 100)
        contract.spillOver = .whenSaturated
        return contract
    }

    private func plan(_ candidates: [RouteCandidate], contract: Contract = standard, routing: Plan.Routing = .ordered) -> Plan {
        Plan(model: "chat", candidates: candidates, contract: contract, routing: routing, promptTokens: 1000, outputTokens: 100, noRoute: "no route")
    }

    /// The id of the candidate an action is about, or the ending's description.
    private func describe(_ action: Plan.Action) -> String {
        switch action {
        case .weighSpillOver(let candidate): "weigh \(candidate.id)"
        case .place(let candidate, let keys, let spilled): "place \(candidate.id)" + (keys.isEmpty ? "" : " not \(keys.sorted())") + (spilled ? " spilled" : "")
        case .attempt(let candidate): "attempt \(candidate.id)"
        case .wait(let delay): "wait \(delay)"
        case .finish(.answered(let candidate, let spilled)): "answered by \(candidate.id)" + (spilled ? " spilled" : "")
        case .finish(.relayError(let error, let candidate)): "relay \(error) from \(candidate.id)"
        case .finish(.capacityExhausted(let candidate, let predicted)): "capacity exhausted at \(candidate.id) \(predicted.map { "\($0)" } ?? "unknown")"
        case .finish(.failed(let error, let retryAfter, let last)): "failed \(error) retry \(retryAfter.map { "\($0)" } ?? "none") last \(last?.id ?? "none")"
        case .finish(.cancelled(let candidate, let sent)): "cancelled at \(candidate.id)" + (sent ? " after sending" : "")
        case .finish(.shuttingDown(let candidate)): "shutting down at \(candidate.id)"
        }
    }

    // MARK: Order

    @Test("the first candidate is placed and answers")
    func firstAnswers() {
        var plan = plan([Self.engine, Self.cheap])
        #expect(describe(plan.next()) == "place engine")
        #expect(describe(plan.record(placement: .placed(key: nil))) == "attempt engine")
        #expect(describe(plan.record(attempt: .answered)) == "answered by engine")
    }

    @Test("cost routing ranks by the request's expected price; ties keep their order")
    func costRouting() {
        #expect(plan([Self.dear, Self.cheap, Self.engine], routing: .cost).order.map(\.id) == ["engine", "cheap", "dear"])
        #expect(plan([Self.dear, Self.cheap], routing: .ordered).order.map(\.id) == ["dear", "cheap"])
        let twin = RouteCandidate(id: "cheap-twin", kind: .keyPool, inputPricePerMillion: 150_000, outputPricePerMillion: 600_000)
        #expect(plan([twin, Self.dear, Self.cheap], routing: .cost).order.map(\.id) == ["cheap-twin", "cheap", "dear"])
    }

    @Test("a pinned model keeps only its pinned deployment, and nothing when that cannot serve")
    func pinning() {
        var contract = Self.spilling
        contract.pinning = ["chat": "engine"]
        var pinned = plan([Self.cheap, Self.engine, Self.dear], contract: contract, routing: .cost)
        #expect(pinned.order.map(\.id) == ["engine"])
        // Pinned: never weighs spill-over, never falls back.
        #expect(describe(pinned.next()) == "place engine")
        #expect(describe(pinned.record(placement: .saturated(predictedStart: .seconds(3)))) == "capacity exhausted at engine 3.0 seconds")
        contract.pinning = ["chat": "elsewhere"]
        #expect(plan([Self.cheap], contract: contract).isEmpty)
        contract.pinning = ["other-model": "cheap"]
        #expect(plan([Self.engine, Self.cheap], contract: contract).order.count == 2)
    }

    // MARK: Failover

    @Test("an unreachable engine replica moves to the next replica, then the next deployment")
    func engineReplicas() {
        var plan = plan([Self.engine, Self.cheap])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: nil))
        #expect(describe(plan.record(attempt: .unreachable("down"))) == "place engine")
        _ = plan.record(placement: .placed(key: nil))
        // Both replicas tried: the provider next.
        #expect(describe(plan.record(attempt: .unreachable("down"))) == "place cheap")
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .answered)) == "answered by cheap")
    }

    @Test("a refused key is replaced by another key of the provider, excluding those tried")
    func keyRefused() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .keyRefused("429"))) == "place cheap not [\"k1\"]")
        _ = plan.record(placement: .placed(key: "k2"))
        #expect(describe(plan.record(attempt: .keyRefused("429"))) == "place cheap not [\"k1\", \"k2\"]")
        // No key left: the next deployment, keeping the provider's retry time.
        #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: .seconds(20)))) == "place dear")
        #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: .seconds(5)))) == "failed 429 retry 5.0 seconds last cheap")
    }

    @Test("with no attempt made, the providers' own refusal is the answer")
    func nothingTried() {
        var plan = plan([Self.cheap])
        _ = plan.next()
        #expect(describe(plan.record(placement: .unavailable("all keys cooling", retryAfter: .seconds(7)))) == "failed all keys cooling retry 7.0 seconds last none")
        var empty = self.plan([])
        #expect(describe(empty.next()) == "failed no route retry none last none")
    }

    @Test("a provider's server error: one more of its keys, then the next deployment")
    func serverErrors() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .refused("500", retryable: true))) == "place cheap not [\"k1\"]")
        _ = plan.record(placement: .placed(key: "k2"))
        #expect(describe(plan.record(attempt: .refused("500", retryable: true))) == "place dear")
        _ = plan.record(placement: .placed(key: "d1"))
        // The last deployment keeps trying keys, up to the attempt limit.
        #expect(describe(plan.record(attempt: .refused("502", retryable: true))) == "place dear not [\"d1\"]")
        _ = plan.record(placement: .placed(key: "d2"))
        // The fourth attempt's error is the answer.
        #expect(describe(plan.record(attempt: .refused("503", retryable: true))) == "relay 503 from dear")
    }

    @Test("an unreachable provider: one more key, then the next deployment")
    func unreachableProvider() {
        var plan = plan([Self.cheap, Self.engine])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .unreachable("timeout"))) == "place cheap not [\"k1\"]")
        _ = plan.record(placement: .placed(key: "k2"))
        #expect(describe(plan.record(attempt: .unreachable("timeout"))) == "place engine")
    }

    @Test("an error that is the request's own is relayed at once")
    func requestErrors() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .refused("400 bad", retryable: false))) == "relay 400 bad from cheap")
        // The last engine's retryable error is relayed too: nothing is left to try.
        var engineOnly = self.plan([Self.otherEngine])
        _ = engineOnly.next()
        _ = engineOnly.record(placement: .placed(key: nil))
        #expect(describe(engineOnly.record(attempt: .refused("503", retryable: true))) == "relay 503 from engine-b")
    }

    @Test("a request the deployment cannot take is tried on the next")
    func notSent() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .notSent("unsupported"))) == "place dear")
    }

    @Test("at most maximumAttempts upstream attempts in all")
    func attemptLimit() {
        var plan = Plan(model: "chat", candidates: [Self.cheap, Self.dear], contract: Self.standard, noRoute: "none", maximumAttempts: 2)
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        _ = plan.record(attempt: .keyRefused("429 one"))
        _ = plan.record(placement: .placed(key: "k2"))
        #expect(describe(plan.record(attempt: .keyRefused("429 two"))) == "failed 429 two retry none last cheap")
    }

    @Test("a client leaving or a shutdown ends the route")
    func endings() {
        var waiting = plan([Self.engine])
        _ = waiting.next()
        #expect(describe(waiting.record(placement: .cancelled)) == "cancelled at engine")
        var sending = plan([Self.cheap])
        _ = sending.next()
        _ = sending.record(placement: .placed(key: "k"))
        #expect(describe(sending.record(attempt: .cancelled)) == "cancelled at cheap after sending")
        var stopping = plan([Self.cheap])
        _ = stopping.next()
        _ = stopping.record(placement: .placed(key: "k"))
        #expect(describe(stopping.record(attempt: .shuttingDown)) == "shutting down at cheap")
    }

    // MARK: Rate limits

    /// A 429 whose key cools down for `seconds`; `invited` when the provider named the
    /// delay or said to retry.
    private static func limited(_ failure: String = "429", seconds: Double, invited: Bool = true) -> Plan.Attempt {
        .rateLimited(failure, cooldown: .milliseconds(Int(seconds * 1000)), invitesRetry: invited)
    }

    @Test("a one-key deployment rate-limited for a short delay waits it out and retries the same key")
    func shortDelayRetriesTheSameKey() {
        var plan = plan([Self.cheap])
        #expect(describe(plan.next()) == "place cheap")
        for _ in 0..<2 {
            #expect(describe(plan.record(placement: .placed(key: "k1"))) == "attempt cheap")
            #expect(describe(plan.record(attempt: Self.limited(seconds: 1))) == "place cheap not [\"k1\"]")
            #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: nil))) == "wait 1.0 seconds")
            // The key the provider asked to wait for may be chosen again.
            #expect(describe(plan.record(wait: .elapsed)) == "place cheap")
        }
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .answered)) == "answered by cheap")
    }

    @Test("a long delay, or one the provider did not invite a retry after, is answered at once with the cooldown")
    func longDelayIsAnswered() {
        var long = plan([Self.cheap])
        _ = long.next()
        _ = long.record(placement: .placed(key: "k1"))
        _ = long.record(attempt: Self.limited(seconds: 20))
        #expect(describe(long.record(placement: .unavailable("no key", retryAfter: nil))) == "failed 429 retry 20.0 seconds last cheap")
        var uninvited = plan([Self.cheap])
        _ = uninvited.next()
        _ = uninvited.record(placement: .placed(key: "k1"))
        _ = uninvited.record(attempt: Self.limited(seconds: 1, invited: false))
        #expect(describe(uninvited.record(placement: .unavailable("no key", retryAfter: nil))) == "failed 429 retry 1.0 seconds last cheap")
        // Just over the longest wait is not waited for either.
        var over = Plan(model: "chat", candidates: [Self.cheap], contract: Self.standard, noRoute: "none", longestRetryWait: .seconds(2))
        _ = over.next()
        _ = over.record(placement: .placed(key: "k1"))
        _ = over.record(attempt: Self.limited(seconds: 2.001))
        #expect(describe(over.record(placement: .unavailable("no key", retryAfter: nil))) == "failed 429 retry 2.001 seconds last cheap")
    }

    @Test("another key, then another deployment, is tried before any wait")
    func othersBeforeWaiting() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: Self.limited(seconds: 1))) == "place cheap not [\"k1\"]")
        _ = plan.record(placement: .placed(key: "k2"))
        _ = plan.record(attempt: Self.limited(seconds: 1.5))
        #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: nil))) == "place dear")
        _ = plan.record(placement: .placed(key: "d1"))
        #expect(describe(plan.record(attempt: .refused("500", retryable: true))) == "place dear not [\"d1\"]")
        // Nothing else now: back to the provider that asked for the shortest wait, every
        // key it rate-limited allowed again.
        #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: nil))) == "wait 1.0 seconds")
        #expect(describe(plan.record(wait: .elapsed)) == "place cheap")
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .answered)) == "answered by cheap")
    }

    @Test("after a wait only the deployment waited for is tried again, and its fresh retry time is the answer's")
    func onlyTheWaitedDeploymentAfterAWait() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        _ = plan.record(attempt: Self.limited(seconds: 1))
        _ = plan.record(placement: .unavailable("no key", retryAfter: nil))
        _ = plan.record(placement: .placed(key: "d1"))
        _ = plan.record(attempt: Self.limited("429 dear", seconds: 30))
        #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: nil))) == "wait 1.0 seconds")
        #expect(describe(plan.record(wait: .elapsed)) == "place cheap")
        #expect(describe(plan.record(placement: .unavailable("cooling", retryAfter: .milliseconds(200)))) == "failed 429 dear retry 0.2 seconds last dear")
    }

    @Test("waits stay within the attempt budget")
    func waitsWithinBudget() {
        var plan = Plan(model: "chat", candidates: [Self.cheap], contract: Self.standard, noRoute: "none", maximumAttempts: 2)
        _ = plan.next()
        _ = plan.record(placement: .placed(key: "k1"))
        _ = plan.record(attempt: Self.limited(seconds: 1))
        #expect(describe(plan.record(placement: .unavailable("no key", retryAfter: nil))) == "wait 1.0 seconds")
        _ = plan.record(wait: .elapsed)
        _ = plan.record(placement: .placed(key: "k1"))
        // The second attempt was the last: its cooldown is the answer's retry time.
        #expect(describe(plan.record(attempt: Self.limited("429 again", seconds: 1))) == "failed 429 again retry 1.0 seconds last cheap")
    }

    @Test("a client leaving, or the server shutting down, ends the wait")
    func waitEndings() {
        func waiting() -> Plan {
            var plan = plan([Self.cheap])
            _ = plan.next()
            _ = plan.record(placement: .placed(key: "k1"))
            _ = plan.record(attempt: Self.limited(seconds: 0.5))
            _ = plan.record(placement: .unavailable("no key", retryAfter: nil))
            return plan
        }
        var leaving = waiting()
        #expect(describe(leaving.record(wait: .cancelled)) == "cancelled at cheap")
        var stopping = waiting()
        #expect(describe(stopping.record(wait: .shuttingDown)) == "failed 429 retry 0.5 seconds last cheap")
    }

    @Test("while every key is cooling down, the soonest end is the answer's retry time; keys that will serve win over keys that never will")
    func everyKeyCooling() {
        var plan = plan([Self.cheap, Self.dear])
        _ = plan.next()
        _ = plan.record(placement: .unavailable("503 every key disabled", retryAfter: nil))
        #expect(describe(plan.record(placement: .unavailable("429 cooling", retryAfter: .seconds(7)))) == "failed 429 cooling retry 7.0 seconds last none")
        var reversed = self.plan([Self.cheap, Self.dear])
        _ = reversed.next()
        _ = reversed.record(placement: .unavailable("429 cooling", retryAfter: .seconds(7)))
        #expect(describe(reversed.record(placement: .unavailable("503 every key disabled", retryAfter: nil))) == "failed 429 cooling retry 7.0 seconds last none")
        var both = self.plan([Self.cheap, Self.dear])
        _ = both.next()
        _ = both.record(placement: .unavailable("429 cheap", retryAfter: .seconds(7)))
        #expect(describe(both.record(placement: .unavailable("429 dear", retryAfter: .seconds(3)))) == "failed 429 dear retry 3.0 seconds last none")
    }

    // MARK: Saturation and spill-over

    @Test("a contract that never spills waits for the pool, or is refused for capacity")
    func neverSpills() {
        var plan = plan([Self.engine, Self.cheap])
        #expect(describe(plan.next()) == "place engine")
        #expect(describe(plan.record(placement: .saturated(predictedStart: .seconds(9)))) == "capacity exhausted at engine 9.0 seconds")
    }

    @Test("a saturated pool hands the request to another engine pool before refusing")
    func anotherEngine() {
        var plan = plan([Self.engine, Self.otherEngine])
        _ = plan.next()
        #expect(describe(plan.record(placement: .saturated(predictedStart: nil))) == "place engine-b")
        #expect(describe(plan.record(placement: .saturated(predictedStart: .seconds(2)))) == "capacity exhausted at engine-b 2.0 seconds")
    }

    @Test("a saturated pool spills over to the providers after it, marked as spilled")
    func spillsOver() {
        var plan = plan([Self.engine, Self.cheap, Self.dear], contract: Self.spilling)
        #expect(describe(plan.next()) == "weigh engine")
        #expect(describe(plan.record(saturated: true)) == "place cheap spilled")
        _ = plan.record(placement: .placed(key: "k1"))
        #expect(describe(plan.record(attempt: .answered)) == "answered by cheap spilled")
    }

    @Test("a pool that is not saturated is waited for; no spill is weighed twice")
    func notSaturated() {
        var plan = plan([Self.engine, Self.cheap], contract: Self.spilling)
        #expect(describe(plan.next()) == "weigh engine")
        #expect(describe(plan.record(saturated: false)) == "place engine")
        _ = plan.record(placement: .placed(key: nil))
        #expect(describe(plan.record(attempt: .answered)) == "answered by engine")
    }

    @Test("when no spill target has room, the request comes back to the pool's queue")
    func backToTheQueue() {
        var plan = plan([Self.engine, Self.cheap, Self.dear], contract: Self.spilling)
        _ = plan.next()
        _ = plan.record(saturated: true)
        #expect(plan.order.map(\.id) == ["cheap", "dear", "engine"])
        #expect(describe(plan.record(placement: .unavailable("cooling", retryAfter: .seconds(30)))) == "place dear spilled")
        #expect(describe(plan.record(placement: .unavailable("cooling", retryAfter: .seconds(30)))) == "place engine")
        _ = plan.record(placement: .placed(key: nil))
        #expect(describe(plan.record(attempt: .answered)) == "answered by engine")
    }

    @Test("spill-over goes only to providers with keys within the contract's blended price")
    func spillPrice() {
        var contract = Self.spilling
        // cheap blends to (3 × 150,000 + 600,000) / 4 = 262,500; dear to 4,375,000.
        contract.maximumSpillPricePerMillion = 262_500
        var plan = plan([Self.engine, Self.keyless, Self.dear, Self.cheap], contract: contract)
        _ = plan.next()
        _ = plan.record(saturated: true)
        #expect(plan.order.map(\.id) == ["cheap", "engine", "keyless", "dear"])
        contract.maximumSpillPricePerMillion = 262_499
        var tooDear = self.plan([Self.engine, Self.dear, Self.cheap], contract: contract)
        // Nothing to spill to: no weighing at all.
        #expect(describe(tooDear.next()) == "place engine")
        #expect(Self.dear.blendedPricePerMillion == 4_375_000)
    }
}
