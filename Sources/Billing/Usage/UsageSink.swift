/// Where the usage writer delivers a batch of events: the ledger itself, or (with Redis)
/// the usage stream that `switchyard meter` moves into the ledger.
public protocol UsageSink: Sendable {
    /// Delivers `events`, all of them or none: when it throws, the writer keeps them (in
    /// the spool) and tries again. Delivering an event twice must be harmless: the ledger
    /// stores a request id once.
    func deliver(_ events: [UsageEvent]) async throws

    /// Called once when the writer stops, after its last delivery.
    func finish()
}

extension UsageSink {
    public func finish() {}
}

/// Delivers straight into the ledger: the embedded mode, one process writing its own file.
public struct LedgerSink: UsageSink {
    public let ledger: Ledger

    public init(ledger: Ledger) {
        self.ledger = ledger
    }

    public func deliver(_ events: [UsageEvent]) async throws {
        try await ledger.record(events)
    }

    public func finish() {
        try? ledger.checkpoint()
    }
}
