/// Bounds on what one request may use.
public struct ProxyLimits: Sendable {
    /// Largest request body accepted; larger gets 413.
    public var maximumRequestBodyBytes: Int
    /// Largest upstream error body read for translation.
    public var maximumErrorBodyBytes: Int
    /// Longest a single upstream request (including its stream) may take.
    public var upstreamTimeout: Duration
    /// Largest non-streaming answer collected for translation from another format.
    public var maximumTranslatedBodyBytes: Int
    /// Output tokens reserved against a tenant's tokens-per-minute when the request sets
    /// no max_tokens; the unused part is given back when the request ends.
    public var defaultOutputReservation: Int

    public init(
        maximumRequestBodyBytes: Int = 8 << 20,
        maximumErrorBodyBytes: Int = 1 << 20,
        upstreamTimeout: Duration = .seconds(900),
        maximumTranslatedBodyBytes: Int = 32 << 20,
        defaultOutputReservation: Int = 1024
    ) {
        self.maximumRequestBodyBytes = maximumRequestBodyBytes
        self.maximumErrorBodyBytes = maximumErrorBodyBytes
        self.upstreamTimeout = upstreamTimeout
        self.maximumTranslatedBodyBytes = maximumTranslatedBodyBytes
        self.defaultOutputReservation = defaultOutputReservation
    }
}
