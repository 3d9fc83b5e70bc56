/// The values of OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers
/// for one tenant at one instant. A window is nil when that limit is not set.
public struct RateLimitHeaders: Sendable, Hashable {
    public struct Window: Sendable, Hashable {
        /// Requests or tokens per minute.
        public var limit: Int
        /// What can be taken now; never negative.
        public var remaining: Int
        /// Until the bucket is full again.
        public var reset: Duration

        public init(limit: Int, remaining: Int, reset: Duration) {
            self.limit = limit
            self.remaining = remaining
            self.reset = reset
        }

        init(_ bucket: TokenBucket, now: ContinuousClock.Instant) {
            let current = bucket.refilled(now: now)
            self.init(limit: current.capacity, remaining: current.available, reset: current.timeUntilFull(now: now))
        }
    }

    public var requests: Window?
    public var tokens: Window?

    public init(requests: Window? = nil, tokens: Window? = nil) {
        self.requests = requests
        self.tokens = tokens
    }

    /// The header fields, in a fixed order; none for a limit that is not set.
    public var fields: [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        for (kind, window) in [("requests", requests), ("tokens", tokens)] {
            guard let window else { continue }
            fields.append(("x-ratelimit-limit-\(kind)", String(window.limit)))
            fields.append(("x-ratelimit-remaining-\(kind)", String(window.remaining)))
            fields.append(("x-ratelimit-reset-\(kind)", Self.format(window.reset)))
        }
        return fields
    }

    /// A duration as OpenAI writes resets (Go's notation): `0s`, `20ms`, `6s`, `1m30.5s`,
    /// `2h0m1s`. Rounded up to the millisecond, so a wait is never understated.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        guard seconds > 0 || attoseconds > 0 else { return "0s" }
        let milliseconds = Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        let hours = milliseconds / 3_600_000
        let minutes = milliseconds / 60_000 % 60
        let wholeSeconds = milliseconds / 1000 % 60
        let fraction = milliseconds % 1000
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if hours > 0 || minutes > 0 { text += "\(minutes)m" }
        text += "\(wholeSeconds)"
        if fraction > 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 3 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            text += ".\(digits)"
        }
        return text + "s"
    }
}
