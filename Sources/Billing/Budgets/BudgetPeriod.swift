import Foundation

/// The calendar period a budget's limits apply to, in UTC.
public enum BudgetPeriod: String, Sendable, Codable, CaseIterable {
    /// A UTC day, from midnight.
    case day
    /// An ISO 8601 week, from Monday midnight UTC.
    case week
    /// A calendar month, from the first at midnight UTC.
    case month

    /// The calendar period in UTC that contains `date`: `[start, end)`. Weeks start on
    /// Monday (ISO 8601).
    public func interval(containing date: Date) -> DateInterval {
        let component: Calendar.Component = switch self {
        case .day: .day
        case .week: .weekOfYear
        case .month: .month
        }
        guard let interval = Self.calendar.dateInterval(of: component, for: date) else {
            // The Gregorian calendar in UTC has a day, week and month around every instant.
            preconditionFailure("no UTC \(rawValue) contains \(date)")
        }
        return interval
    }

    /// Gregorian in UTC, with ISO 8601 weeks (Monday first).
    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        calendar.firstWeekday = 2
        calendar.minimumDaysInFirstWeek = 4
        return calendar
    }()
}
