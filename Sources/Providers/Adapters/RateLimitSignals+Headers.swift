import Foundation

extension RateLimitSignals {
    /// Reads the headers every provider may send: `retry-after` (seconds or an HTTP
    /// date), `retry-after-ms`, `x-should-retry`.
    public mutating func readCommonHeaders(_ headers: HeaderFields, now: Date = Date()) {
        if let milliseconds = Self.header("retry-after-ms", in: headers).flatMap(Double.init),
           let duration = Self.duration(seconds: milliseconds / 1000) {
            retryAfter = duration
        } else if let value = Self.header("retry-after", in: headers) {
            retryAfter = Self.parseRetryAfter(value, now: now)
        }
        if let value = Self.header("x-should-retry", in: headers)?.lowercased() {
            shouldRetry = value == "true" ? true : (value == "false" ? false : nil)
        }
    }

    /// OpenAI's (and Azure's) `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
    /// resets written as durations like `6ms`, `20s`, `1m30s`, plus the common headers.
    public static func openAI(headers: HeaderFields, now: Date = Date()) -> RateLimitSignals {
        var signals = RateLimitSignals()
        for (kind, keyPath) in [("requests", \RateLimitSignals.requests), ("tokens", \RateLimitSignals.tokens)] {
            signals[keyPath: keyPath] = Window(
                limit: header("x-ratelimit-limit-\(kind)", in: headers).flatMap { Int($0) },
                remaining: header("x-ratelimit-remaining-\(kind)", in: headers).flatMap { Int($0) },
                reset: header("x-ratelimit-reset-\(kind)", in: headers).flatMap(parseDuration)
            )
        }
        signals.readCommonHeaders(headers, now: now)
        return signals
    }

    // MARK: Parsing

    /// The first value of a header, by case-insensitive name.
    public static func header(_ name: String, in headers: HeaderFields) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value.trimmingCharacters(in: .whitespaces)
    }

    /// Parses Go-style durations as OpenAI writes them: `6ms`, `0s`, `1m30s`, `2h0m1.5s`,
    /// `350us`. A bare number is seconds. Nil for anything else.
    public static func parseDuration(_ text: String) -> Duration? {
        if let seconds = Double(text) { return duration(seconds: seconds) }
        var total = 0.0
        var number = ""
        var index = text.startIndex
        var sawUnit = false
        while index < text.endIndex {
            let character = text[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = text.index(after: index)
                continue
            }
            var unit = String(character)
            index = text.index(after: index)
            if index < text.endIndex, text[index] == "s", unit == "m" || unit == "u" || unit == "µ" || unit == "n" {
                unit.append("s")
                index = text.index(after: index)
            }
            guard let value = Double(number) else { return nil }
            let scale: Double
            switch unit {
            case "h": scale = 3600
            case "m": scale = 60
            case "s": scale = 1
            case "ms": scale = 0.001
            case "us", "µs": scale = 0.000_001
            case "ns": scale = 0.000_000_001
            default: return nil
            }
            total += value * scale
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else { return nil }
        return duration(seconds: total)
    }

    /// `retry-after`: delay seconds, or an HTTP date (RFC 9110).
    public static func parseRetryAfter(_ text: String, now: Date = Date()) -> Duration? {
        if let seconds = Double(text) { return duration(seconds: seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: text) else { return nil }
        return duration(seconds: max(0, date.timeIntervalSince(now)))
    }

    /// An RFC 3339 time (as Anthropic writes resets) as a duration from `now`.
    public static func parseResetTime(_ text: String, now: Date = Date()) -> Duration? {
        let strategies: [Date.ISO8601FormatStyle] = [
            .iso8601, Date.ISO8601FormatStyle(includingFractionalSeconds: true),
        ]
        for strategy in strategies {
            if let date = try? Date(text, strategy: strategy) {
                return duration(seconds: max(0, date.timeIntervalSince(now)))
            }
        }
        return nil
    }

    /// The longest delay or reset a provider is believed: longer ones are held to it.
    public static let longestReportedDelay: Duration = .seconds(7 * 24 * 3600)

    /// Seconds as a provider wrote them, as a duration: nil unless finite and not negative
    /// (`Double` reads `inf`, `nan` and `1e999` too), and at most `longestReportedDelay`,
    /// so no header can build a duration that overflows.
    static func duration(seconds: Double) -> Duration? {
        guard seconds.isFinite, seconds >= 0 else { return nil }
        let longest = Double(longestReportedDelay.components.seconds)
        return .milliseconds(min(seconds, longest) * 1000)
    }
}
