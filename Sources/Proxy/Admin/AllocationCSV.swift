import Billing

/// An allocation report as CSV (RFC 4180): a header, the page's rows, and on the last
/// page the totals, each line ended by CRLF. The first column, `row`, says what a line is
/// (`group`, `idle`, `total`).
enum AllocationCSV {
    /// The page as one CSV document.
    static func render(_ report: AllocationReport) -> String {
        var lines = [header(report).map(field).joined(separator: ",")]
        var rows = report.rows
        if report.nextCursor == nil { rows += report.totals }
        for row in rows { lines.append(record(row, report).map(field).joined(separator: ",")) }
        return lines.map { $0 + "\r\n" }.joined()
    }

    /// The column names.
    static func header(_ report: AllocationReport) -> [String] {
        var columns = ["row"] + report.groupBy.map(\.rawValue)
        if report.includeGPU { columns.append("pool") }
        columns += [
            "currency", "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens",
            "estimated_requests", "cost_micros",
        ]
        if report.includeGPU { columns.append("gpu_cost_micros") }
        return columns + ["billed_micros", "margin_micros", "slot_ms", "slot_seconds"]
    }

    /// One line's values, in the header's order; an empty field for what a row has not.
    static func record(_ row: AllocationRow, _ report: AllocationReport) -> [String] {
        var values = [row.kind.rawValue]
        values += report.groupBy.indices.map { $0 < row.groupValues.count ? row.groupValues[$0] : "" }
        if report.includeGPU { values.append(row.pool ?? "") }
        let sums = row.sums
        values += [
            row.currency, "\(sums.requests)", "\(sums.promptTokens)", "\(sums.cachedTokens)", "\(sums.completionTokens)",
            "\(sums.reasoningTokens)", "\(sums.estimatedRequests)", "\(sums.costMicros)",
        ]
        if report.includeGPU { values.append("\(sums.gpuCostMicros)") }
        return values + [
            sums.billedMicros.map { "\($0)" } ?? "", "\(sums.marginMicros)", "\(sums.slotMilliseconds)",
            seconds(milliseconds: sums.slotMilliseconds),
        ]
    }

    /// A field, quoted when it holds a comma, a quote, CR or LF, its quotes doubled.
    static func field(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0D || $0 == 0x0A }) else {
            return value
        }
        // By scalar, not by character: a quote followed by a combining mark is one
        // Character, but still a quote to a CSV reader.
        var quoted = String.UnicodeScalarView()
        quoted.append("\"")
        for scalar in value.unicodeScalars {
            quoted.append(scalar)
            if scalar == "\"" { quoted.append("\"") }
        }
        quoted.append("\"")
        return String(quoted)
    }

    /// Milliseconds as exact decimal seconds, `12.345`.
    static func seconds(milliseconds: Int64) -> String {
        let sign = milliseconds < 0 ? "-" : ""
        let magnitude = milliseconds.magnitude
        let fraction = String(magnitude % 1000)
        return "\(sign)\(magnitude / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}
