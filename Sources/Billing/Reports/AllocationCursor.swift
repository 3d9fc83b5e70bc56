import Foundation

/// Where a page of an allocation report ends: the sort key of its last row. Rows sort by
/// kind (groups, then idle pools), then by their values' bytes. Sent as base64url of a
/// JSON array of strings, so it is opaque to callers and checked when it comes back.
struct AllocationCursor: Sendable, Comparable {
    var kind: AllocationRow.Kind
    /// A group's values then its currency; an idle row's pool then its currency.
    var values: [String]

    init(kind: AllocationRow.Kind, values: [String]) {
        self.kind = kind
        self.values = values
    }

    /// The sort key of `row`.
    init(_ row: AllocationRow) {
        kind = row.kind
        values = row.kind == .idle ? [row.pool ?? "", row.currency] : row.groupValues + [row.currency]
    }

    /// Decodes a cursor given by a report grouped by `dimensions` columns.
    /// - Throws: `ReportError.invalidCursor` for anything else.
    init(decoding text: String, dimensions: Int, allowsIdle: Bool) throws(ReportError) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
              let array = try? JSONDecoder().decode([String].self, from: data),
              let first = array.first, let kind = AllocationRow.Kind(rawValue: first)
        else { throw ReportError.invalidCursor }
        let values = Array(array.dropFirst())
        switch kind {
        case .group where values.count == dimensions + 1: break
        case .idle where allowsIdle && values.count == 2: break
        default: throw ReportError.invalidCursor
        }
        self.kind = kind
        self.values = values
    }

    /// base64url, without padding, of `[kind, values…]`.
    var encoded: String {
        let data = (try? JSONEncoder().encode([kind.rawValue] + values)) ?? Data()
        return data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func == (lhs: AllocationCursor, rhs: AllocationCursor) -> Bool {
        !(lhs < rhs) && !(rhs < lhs)
    }

    /// Groups before idle rows; then the values compared byte by byte, as SQLite's BINARY
    /// collation compares them.
    static func < (lhs: AllocationCursor, rhs: AllocationCursor) -> Bool {
        if lhs.kind != rhs.kind { return lhs.kind == .group }
        for (left, right) in zip(lhs.values, rhs.values) where !left.utf8.elementsEqual(right.utf8) {
            return left.utf8.lexicographicallyPrecedes(right.utf8)
        }
        return lhs.values.count < rhs.values.count
    }
}
