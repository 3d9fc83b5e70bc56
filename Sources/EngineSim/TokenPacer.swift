/// When each token of a generation is due: after the time to first token, then one every
/// `1 / tokensPerSecond` seconds.
///
/// Offsets are measured from the moment the request took its slot, and callers sleep until
/// `start + offset` rather than for an interval, so slow writes do not make the stream drift.
struct TokenPacer: Sendable {
    let timeToFirstToken: Duration
    /// Delay between consecutive tokens; nil when decoding is not paced.
    let interTokenDelay: Duration?

    /// Creates a pacer.
    /// - Parameters:
    ///   - timeToFirstToken: Delay before the first token; negative values count as zero.
    ///   - tokensPerSecond: Decode rate; 0 or less (or not finite) means no delay between tokens.
    init(timeToFirstToken: Duration, tokensPerSecond: Double) {
        self.timeToFirstToken = max(timeToFirstToken, .zero)
        if tokensPerSecond > 0, tokensPerSecond.isFinite {
            // Clamped to a day so absurdly slow rates cannot overflow the nanosecond count.
            let nanoseconds = min(1e9 / tokensPerSecond, 86_400e9)
            self.interTokenDelay = .nanoseconds(Int64(nanoseconds))
        } else {
            self.interTokenDelay = nil
        }
    }

    /// The offset from the start of generation at which token `index` is due, or nil when it
    /// is due as soon as the previous token is out.
    func offset(ofToken index: Int) -> Duration? {
        if index == 0 {
            return timeToFirstToken > .zero ? timeToFirstToken : nil
        }
        return interTokenDelay.map { timeToFirstToken + $0 * index }
    }

    /// The offset at which a generation of `tokenCount` tokens is complete.
    func completionOffset(tokenCount: Int) -> Duration {
        offset(ofToken: max(tokenCount - 1, 0)) ?? timeToFirstToken
    }
}
