// MARK: Script replies

extension RedisAdmission {
    /// What the admit script answered.
    enum AdmitReply: Sendable, Hashable {
        case admitted(RateLimitHeaders)
        case refused(limit: AdmissionRefusal.Limit, limitValue: Int, remaining: Int, retryAfter: Duration?, headers: RateLimitHeaders)
        /// The reservation id is already open for the tenant; nothing changed.
        case idInUse

        /// Reads `{status, limit, limitValue, remaining, retryAfter, requests limit,
        /// remaining, reset, tokens limit, remaining, reset}`.
        /// - Throws: ``RedisError/protocolError`` for anything else.
        init(_ reply: RedisReply) throws(RedisError) {
            let numbers = Self.integers(reply)
            if numbers == [2] {
                self = .idInUse
                return
            }
            guard let numbers, numbers.count == 11, let status = numbers.first, status == 0 || status == 1 else {
                throw .protocolError("the admit script answered \(reply)")
            }
            let headers = RateLimitHeaders(
                requests: Self.window(numbers[5], numbers[6], numbers[7]),
                tokens: Self.window(numbers[8], numbers[9], numbers[10])
            )
            if status == 1 {
                self = .admitted(headers)
                return
            }
            let limit: AdmissionRefusal.Limit
            switch numbers[1] {
            case 1: limit = .requests
            case 2: limit = .tokens
            case 3: limit = .concurrency
            default: throw .protocolError("the admit script named limit \(numbers[1])")
            }
            self = .refused(
                limit: limit, limitValue: numbers[2], remaining: numbers[3],
                retryAfter: numbers[4] < 0 ? nil : .milliseconds(numbers[4]), headers: headers
            )
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
}
