import Foundation
import Testing

@testable import Billing

@Suite("Budget periods")
struct BudgetPeriodTests {
    private func interval(_ period: BudgetPeriod, _ iso: String) -> DateInterval {
        period.interval(containing: date(iso))
    }

    private func span(_ start: String, _ end: String) -> DateInterval {
        DateInterval(start: date(start), end: date(end))
    }

    @Test("a day runs from UTC midnight to the next, the last millisecond included")
    func days() {
        #expect(interval(.day, "2026-03-01T10:00:00Z") == span("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"))
        #expect(interval(.day, "2026-03-01T00:00:00Z") == span("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"))
        #expect(interval(.day, "2026-03-01T23:59:59.999Z") == span("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"))
        #expect(interval(.day, "2026-03-02T00:00:00Z") == span("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"))
        #expect(interval(.day, "2028-02-29T12:00:00Z") == span("2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"))
        #expect(interval(.day, "2026-12-31T23:59:59.999Z") == span("2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"))
    }

    @Test("a week runs from Monday to Monday: Sunday's last millisecond is in the old week")
    func weeks() {
        // 1 March 2026 is a Sunday.
        #expect(interval(.week, "2026-03-01T23:59:59.999Z") == span("2026-02-23T00:00:00Z", "2026-03-02T00:00:00Z"))
        #expect(interval(.week, "2026-03-02T00:00:00Z") == span("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"))
        #expect(interval(.week, "2026-03-05T15:00:00Z") == span("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"))
        // Weeks straddle years: Thursday 31 December 2026 and Sunday 3 January 2027 share one.
        #expect(interval(.week, "2026-12-31T12:00:00Z") == span("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"))
        #expect(interval(.week, "2027-01-03T23:59:59.999Z") == span("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"))
        #expect(interval(.week, "2027-01-04T00:00:00Z") == span("2027-01-04T00:00:00Z", "2027-01-11T00:00:00Z"))
        // Over a leap day.
        #expect(interval(.week, "2028-02-29T00:00:00Z") == span("2028-02-28T00:00:00Z", "2028-03-06T00:00:00Z"))
    }

    @Test("a month runs from its first to the next month's first, December into January")
    func months() {
        #expect(interval(.month, "2026-03-15T10:00:00Z") == span("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"))
        #expect(interval(.month, "2026-12-31T23:59:59.999Z") == span("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"))
        #expect(interval(.month, "2027-01-01T00:00:00Z") == span("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"))
        // February has 29 days in leap years: every fourth, but not centuries unless divisible by 400.
        #expect(interval(.month, "2028-02-29T23:59:59.999Z") == span("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"))
        #expect(interval(.month, "2028-03-01T00:00:00Z") == span("2028-03-01T00:00:00Z", "2028-04-01T00:00:00Z"))
        #expect(interval(.month, "2026-02-28T23:59:59.999Z").duration == 28 * 86_400)
        #expect(interval(.month, "2100-02-10T00:00:00Z").duration == 28 * 86_400)
        #expect(interval(.month, "2000-02-10T00:00:00Z").duration == 29 * 86_400)
        #expect(interval(.month, "2026-04-30T12:00:00Z").duration == 30 * 86_400)
    }

    @Test("periods tile time: each contains its instant, starts at midnight, and ends where the next starts")
    func tiling() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        // Every 19 hours and 13 minutes over three years, so instants fall on all weekdays and hours.
        var instant = date("2026-01-01T00:00:00Z")
        while instant < date("2029-01-01T00:00:00Z") {
            for period in BudgetPeriod.allCases {
                let current = period.interval(containing: instant)
                #expect(current.start <= instant && instant < current.end, "\(period) around \(instant)")
                #expect(calendar.dateComponents([.hour, .minute, .second, .nanosecond], from: current.start)
                    == DateComponents(hour: 0, minute: 0, second: 0, nanosecond: 0))
                #expect(period.interval(containing: current.end).start == current.end)
                #expect(period.interval(containing: current.end.addingTimeInterval(-0.001)) == current)
                switch period {
                case .day: #expect(current.duration == 86_400)
                case .week:
                    #expect(current.duration == 7 * 86_400)
                    #expect(calendar.component(.weekday, from: current.start) == 2)
                case .month: #expect(calendar.component(.day, from: current.start) == 1)
                }
            }
            instant = instant.addingTimeInterval(19 * 3600 + 13 * 60)
        }
    }
}
