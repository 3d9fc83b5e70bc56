/// Splitting an integer amount in proportion to weights, exactly.
public enum Apportionment {
    /// Splits `total` into integer parts proportional to `weights` by the largest-remainder
    /// method: each part is its exact quota rounded down, and the units left over go one
    /// each to the parts with the largest remainders (ties to the earlier part), so the
    /// parts sum to `total` exactly.
    /// - Parameters:
    ///   - total: the amount to split; a negative one is treated as 0.
    ///   - weights: the proportions; negative weights count as 0.
    /// - Returns: one part per weight; all 0 when every weight is 0.
    public static func largestRemainder(_ total: Int64, weights: [Int64]) -> [Int64] {
        let total = max(0, total)
        let weights = weights.map { max(0, $0) }
        var sum: UInt64 = 0
        for weight in weights {
            let (next, overflow) = sum.addingReportingOverflow(UInt64(weight))
            // Weights summing past 2^64 are halved together, keeping their proportions.
            if overflow { return largestRemainder(total, weights: weights.map { $0 / 2 }) }
            sum = next
        }
        guard sum > 0 else { return weights.map { _ in 0 } }
        var parts: [Int64] = []
        var remainders: [UInt64] = []
        parts.reserveCapacity(weights.count)
        remainders.reserveCapacity(weights.count)
        var assigned: Int64 = 0
        for weight in weights {
            // total × weight / sum in 128 bits: the product of two 63-bit numbers.
            let product = UInt64(total).multipliedFullWidth(by: UInt64(weight))
            let (quotient, remainder) = sum.dividingFullWidth(product)
            parts.append(Int64(quotient))
            remainders.append(remainder)
            assigned += Int64(quotient)
        }
        let leftOver = Int(total - assigned)
        guard leftOver > 0 else { return parts }
        let order = remainders.indices.sorted { remainders[$0] != remainders[$1] ? remainders[$0] > remainders[$1] : $0 < $1 }
        for index in order.prefix(leftOver) { parts[index] += 1 }
        return parts
    }
}
