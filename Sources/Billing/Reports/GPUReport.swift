import Foundation

/// An engine pool's cost over a window, allocated to the tenants by the slot-milliseconds
/// they held; what no one held is the idle row. The rows' costs sum to `costMicros`.
public struct GPUReport: Sendable, Equatable {
    public var pool: EnginePoolCost
    public var from: Date
    public var to: Date
    /// Replicas × hours × cost per hour.
    public var costMicros: Int64
    /// Slots × window milliseconds.
    public var capacitySlotMilliseconds: Int64
    /// Slot-milliseconds held by requests over the window.
    public var occupiedSlotMilliseconds: Int64
    /// The tenants in id order, then the idle row.
    public var rows: [GPUReportRow]
}

/// A tenant's occupancy of a pool and its share of the cost, or the idle capacity's.
public struct GPUReportRow: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case tenant
        /// The slots no request held.
        case idle
    }

    public var kind: Kind
    /// The tenant; nil for the idle row.
    public var tenantID: String?
    public var slotMilliseconds: Int64
    /// The fraction of the pool's cost: slot-milliseconds over capacity (over occupancy,
    /// when requests held more than the pool now offers).
    public var share: Double
    public var costMicros: Int64
}
