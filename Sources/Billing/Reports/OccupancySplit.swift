/// An engine pool's cost over a window, split by occupancy: each occupant pays for the
/// slot-milliseconds it held, out of the slot-milliseconds the pool offered, and what no
/// one held is the rest (the pool's idle cost). When the occupants held more than the
/// pool offered (it has shrunk since), the whole cost is split by occupancy, with no rest.
public struct OccupancySplit: Sendable, Equatable {
    /// Each occupant's part of the cost, in the order given.
    public var shares: [Int64]
    /// The part of the cost no shown occupant pays: the idle capacity's, plus the
    /// occupancy of those not shown.
    public var rest: Int64
    /// What the parts are fractions of: the capacity, or the occupancy when that is larger.
    public var denominator: Int64

    /// Splits `cost` by the largest-remainder method, so that shares and rest sum to it
    /// exactly.
    /// - Parameters:
    ///   - cost: the pool's cost over the window.
    ///   - capacity: slots × window milliseconds.
    ///   - occupancy: slot-milliseconds each shown occupant held.
    ///   - unshownOccupancy: slot-milliseconds held by occupants not shown (other
    ///     tenants, in a report of one); it counts against capacity, and its cost is in `rest`.
    public static func split(cost: Int64, capacity: Int64, occupancy: [Int64], unshownOccupancy: Int64 = 0) -> OccupancySplit {
        let occupancy = occupancy.map { max(0, $0) }
        let held = occupancy.reduce(Int64(0)) { $0 &+ $1 } &+ max(0, unshownOccupancy)
        let denominator = max(max(0, capacity), held)
        let restWeight = denominator - (held - max(0, unshownOccupancy))
        guard denominator > 0 else {
            return OccupancySplit(shares: occupancy.map { _ in 0 }, rest: max(0, cost), denominator: 0)
        }
        var parts = Apportionment.largestRemainder(cost, weights: occupancy + [restWeight])
        let rest = parts.removeLast()
        return OccupancySplit(shares: parts, rest: rest, denominator: denominator)
    }

    /// `part` as a fraction of the denominator, for display; 0 when there is none.
    public func fraction(_ part: Int64) -> Double {
        denominator > 0 ? Double(part) / Double(denominator) : 0
    }
}
