/// What an engine pool costs to run, for allocating its cost by occupancy: the pool's
/// size as configured now, and its price per replica-hour.
public struct EnginePoolCost: Sendable, Equatable, Hashable {
    /// The engine pool's id.
    public var pool: String
    public var replicas: Int
    /// Slots over every replica: requests the pool serves at once.
    public var slots: Int
    /// Micro-units of `currency` per replica per hour.
    public var costPerHourMicros: Int64
    public var currency: String

    public init(pool: String, replicas: Int, slots: Int, costPerHourMicros: Int64, currency: String) {
        self.pool = pool
        self.replicas = replicas
        self.slots = slots
        self.costPerHourMicros = costPerHourMicros
        self.currency = currency
    }

    /// What the pool costs over `hours` whole hours: replicas × hours × cost per hour;
    /// nil when that does not fit in 64 bits.
    public func cost(hours: Int64) -> Int64? {
        let perHour = Int64(max(0, replicas)).multipliedReportingOverflow(by: max(0, costPerHourMicros))
        guard !perHour.overflow else { return nil }
        let total = perHour.partialValue.multipliedReportingOverflow(by: max(0, hours))
        return total.overflow ? nil : total.partialValue
    }

    /// The slot-milliseconds the pool offers over `milliseconds`: slots × window; nil when
    /// that does not fit in 64 bits.
    public func capacity(milliseconds: Int64) -> Int64? {
        let total = Int64(max(0, slots)).multipliedReportingOverflow(by: max(0, milliseconds))
        return total.overflow ? nil : total.partialValue
    }
}
