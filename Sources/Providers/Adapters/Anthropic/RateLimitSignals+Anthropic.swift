import Foundation

extension RateLimitSignals {
    /// Anthropic's `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
    /// {limit,remaining,reset}` (resets as RFC 3339 times), plus the common headers.
    ///
    /// The Priority Tier's `anthropic-priority-*` headers are not read: Switchyard's
    /// windows track the standard capacity its keys draw on.
    public static func anthropic(headers: HeaderFields, now: Date = Date()) -> RateLimitSignals {
        var signals = RateLimitSignals()
        let windows: [(String, WritableKeyPath<RateLimitSignals, Window>)] = [
            ("requests", \.requests), ("tokens", \.tokens), ("input-tokens", \.inputTokens), ("output-tokens", \.outputTokens),
        ]
        for (kind, keyPath) in windows {
            let prefix = "anthropic-ratelimit-\(kind)-"
            signals[keyPath: keyPath] = Window(
                limit: header(prefix + "limit", in: headers).flatMap { Int($0) },
                remaining: header(prefix + "remaining", in: headers).flatMap { Int($0) },
                reset: header(prefix + "reset", in: headers).flatMap { parseResetTime($0, now: now) }
            )
        }
        signals.readCommonHeaders(headers, now: now)
        return signals
    }
}
