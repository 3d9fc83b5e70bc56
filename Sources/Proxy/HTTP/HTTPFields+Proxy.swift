import HTTPTypes
import NIOHTTP1
import Pools
import Providers

extension HTTPHeaders {
    /// The headers as the name/value pairs adapters read.
    var fields: HeaderFields {
        map { (name: $0.name, value: $0.value) }
    }
}

extension Duration {
    /// Whole milliseconds, rounded down: what the ledger, headers and the management API show.
    var wholeMilliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (total, overflowed) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowed ? (seconds < 0 ? .min : .max) : total
    }
}

extension HTTPFields {
    /// Adds OpenAI's `x-ratelimit-*` headers.
    mutating func append(rateLimitHeaders headers: RateLimitHeaders) {
        for field in headers.fields {
            if let name = HTTPField.Name(field.name) { self[name] = field.value }
        }
    }
}
