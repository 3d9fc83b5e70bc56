// MARK: Script replies

extension RedisAdmission {
    /// What the admit script answered.
    enum AdmitReply: Sendable, Hashable {
        /// Admitted; `throttled` when a spent `throttle` budget admitted it at the throttled rate.
        case admitted(RateLimitHeaders, throttled: Bool)
        case refused(Refused)
        /// These budgets (positions in the request's, from 0) have no state and came
        /// without a seed; nothing was reserved.
        case needsSeed([Int])
        /// The reservation id is already open for the tenant; nothing changed.
        case idInUse

        /// A refusal as the script reports it; the request fills in the rest.
        struct Refused: Sendable, Hashable {
            /// What a refusal's `requested` counts.
            enum Requested: Sendable, Hashable {
                case oneRequest
                case reservedTokens
                case costMicros
            }

            var limit: AdmissionRefusal.Limit
            var limitValue: Int
            var remaining: Int
            var retryAfter: Duration?
            var headers: RateLimitHeaders
            /// For `.budget`: the spent budget's position in the request's budgets, from 0.
            var budget: Int?
            var throttled: Bool
            var requested: Requested

            /// The refusal of `request`, as `AdmissionState.admit` makes it.
            func refusal(for request: AdmissionRequest) -> AdmissionRefusal {
                let requested: Int
                switch self.requested {
                case .oneRequest: requested = 1
                case .reservedTokens: requested = request.reservedTokens
                case .costMicros: requested = Int(clamping: request.maximumCostMicros)
                }
                var refusal = AdmissionRefusal(
                    limit: limit, limitValue: limitValue, remaining: remaining, requested: requested,
                    retryAfter: retryAfter, headers: headers
                )
                refusal.budget = budget.map { request.budgets[$0] }
                refusal.throttled = throttled
                return refusal
            }
        }

        /// Reads `{status, limit, limitValue, remaining, retryAfter, requests limit,
        /// remaining, reset, tokens limit, remaining, reset, budget, throttled, requested}`,
        /// `{2}` or `{3, budget, ...}`.
        /// - Parameter budgetCount: How many budgets the request named.
        /// - Throws: ``RedisError/protocolError`` for anything else.
        init(_ reply: RedisReply, budgetCount: Int) throws(RedisError) {
            let numbers = Self.integers(reply)
            if numbers == [2] {
                self = .idInUse
                return
            }
            if let numbers, numbers.count > 1, numbers[0] == 3 {
                let positions = numbers.dropFirst().map { $0 - 1 }
                guard positions.allSatisfy({ (0..<budgetCount).contains($0) }) else {
                    throw .protocolError("the admit script asked for seeds of \(reply)")
                }
                self = .needsSeed(positions)
                return
            }
            guard let numbers, numbers.count == 14, let status = numbers.first, status == 0 || status == 1,
                  numbers[12] == 0 || numbers[12] == 1
            else {
                throw .protocolError("the admit script answered \(reply)")
            }
            let headers = RateLimitHeaders(
                requests: Self.window(numbers[5], numbers[6], numbers[7]),
                tokens: Self.window(numbers[8], numbers[9], numbers[10])
            )
            let throttled = numbers[12] == 1
            if status == 1 {
                self = .admitted(headers, throttled: throttled)
                return
            }
            let limit: AdmissionRefusal.Limit
            let requested: Refused.Requested
            // Rate limits name no budget (0); a budget refusal names one of the request's.
            let budget = numbers[11]
            let namesBudget = budget >= 1 && budget <= budgetCount
            switch (numbers[1], budget, namesBudget, throttled, numbers[13]) {
            case (1, 0, _, false, 0): (limit, requested) = (.requests, .oneRequest)
            case (2, 0, _, false, 1): (limit, requested) = (.tokens, .reservedTokens)
            case (3, 0, _, false, 0): (limit, requested) = (.concurrency, .oneRequest)
            case (4, _, true, true, 0): (limit, requested) = (.budget, .oneRequest)
            case (4, _, true, _, 1): (limit, requested) = (.budget, .reservedTokens)
            case (4, _, true, _, 2): (limit, requested) = (.budget, .costMicros)
            default: throw .protocolError("the admit script refused with \(reply)")
            }
            self = .refused(Refused(
                limit: limit, limitValue: numbers[2], remaining: numbers[3],
                retryAfter: numbers[4] < 0 ? nil : .milliseconds(numbers[4]), headers: headers,
                budget: limit == .budget ? budget - 1 : nil, throttled: throttled, requested: requested
            ))
        }

        /// The elements of an array of integers; nil when it is something else.
        static func integers(_ reply: RedisReply) -> [Int]? {
            guard let elements = reply.array else { return nil }
            let numbers = elements.compactMap(\.integer)
            return numbers.count == elements.count ? numbers : nil
        }

        private static func window(_ limit: Int, _ remaining: Int, _ reset: Int) -> RateLimitHeaders.Window? {
            limit < 0 ? nil : RateLimitHeaders.Window(limit: limit, remaining: remaining, reset: .milliseconds(reset))
        }
    }

    /// What the settle script answered: the reserved tokens, or nil when there was nothing
    /// to settle.
    struct SettleReply: Sendable, Hashable {
        var reservedTokens: Int?

        /// Reads `{1, reserved tokens}` or `{0}`.
        /// - Throws: ``RedisError/protocolError`` for anything else.
        init(_ reply: RedisReply) throws(RedisError) {
            let numbers = AdmitReply.integers(reply)
            if numbers == [0] {
                reservedTokens = nil
            } else if let numbers, numbers.count == 2, numbers[0] == 1 {
                reservedTokens = numbers[1]
            } else {
                throw .protocolError("the settle script answered \(reply)")
            }
        }

        /// The settlement, as `AdmissionState.settle` reports it.
        func settlement(actualTokens: Int) -> Settlement? {
            reservedTokens.map { reserved in
                Settlement(
                    reservedTokens: reserved, actualTokens: actualTokens,
                    unusedTokens: max(0, reserved - actualTokens), excessTokens: max(0, actualTokens - reserved)
                )
            }
        }
    }

    /// What the budget-status script answered: a period's state, or nil when it has none.
    struct BudgetStatusReply: Sendable, Hashable {
        var status: BudgetStatus?

        /// Reads `{1, used tokens, used micros, reserved tokens, reserved micros}` or `{0}`.
        /// - Throws: ``RedisError/protocolError`` for anything else.
        init(_ reply: RedisReply) throws(RedisError) {
            let numbers = AdmitReply.integers(reply)
            if numbers == [0] {
                status = nil
            } else if let numbers, numbers.count == 5, numbers[0] == 1, numbers.allSatisfy({ $0 >= 0 }) {
                status = BudgetStatus(
                    used: BudgetAmounts(tokens: numbers[1], micros: Int64(numbers[2])),
                    reserved: BudgetAmounts(tokens: numbers[3], micros: Int64(numbers[4]))
                )
            } else {
                throw .protocolError("the budget-status script answered \(reply)")
            }
        }
    }
}
