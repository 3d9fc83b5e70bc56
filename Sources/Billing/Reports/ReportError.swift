/// Why a report cannot be made as asked: a parameter out of range, a cursor that is not
/// one the report gave. `parameter` names the query parameter at fault.
public struct ReportError: Error, Sendable, Equatable, CustomStringConvertible {
    enum Code: Sendable, Equatable {
        case invalidWindow
        case invalidGroupBy
        case invalidLimit
        case invalidCursor
        case noPoolCost
        case overflow
    }

    let code: Code
    /// The query parameter at fault (`from`, `group_by`, `cursor`, …).
    public let parameter: String
    /// What is wrong, in words a caller can act on.
    public let message: String

    init(_ code: Code, parameter: String, _ message: String) {
        self.code = code
        self.parameter = parameter
        self.message = message
    }

    public var description: String { message }

    static let invalidCursor = ReportError(
        .invalidCursor, parameter: "cursor", "'cursor' is not one this report gave: pass the next_cursor of the previous page, unchanged."
    )

    static let overflow = ReportError(.overflow, parameter: "to", "The window is too long: its pool cost does not fit in 64 bits.")
}
