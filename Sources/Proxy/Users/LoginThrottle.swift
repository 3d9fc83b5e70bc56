import Foundation
import Synchronization

/// Limits failed sign-ins per account and per client address, so passwords cannot be
/// guessed at speed: past `perAccount` (or `perAddress`) failures within `window`, sign-in
/// is refused until the oldest of them leaves the window. Kept in this process.
final class LoginThrottle: Sendable {
    private struct State {
        var failures: [String: [Date]] = [:]
    }

    let perAccount: Int
    let perAddress: Int
    let window: TimeInterval
    /// The most keys tracked; beyond it the oldest are forgotten.
    private let capacity = 100_000
    private let state = Mutex(State())

    init(perAccount: Int = 5, perAddress: Int = 20, window: TimeInterval = 15 * 60) {
        self.perAccount = perAccount
        self.perAddress = perAddress
        self.window = window
    }

    /// Takes a sign-in attempt: counts it as a failure at once, in the same step as the
    /// check, so that attempts made at the same moment cannot all pass before any of them
    /// is counted; `succeeded` takes it back.
    /// - Returns: nil when the attempt may go ahead, else the seconds to wait.
    func attempt(account: String, address: String?, now: Date = Date()) -> Int? {
        state.withLock { state in
            var waits: [TimeInterval] = []
            let keys = keys(account: account, address: address)
            for (key, limit) in keys {
                let recent = (state.failures[key] ?? []).filter { now.timeIntervalSince($0) < window }
                state.failures[key] = recent.isEmpty ? nil : recent
                if recent.count >= limit, let oldest = recent.first {
                    waits.append(window - now.timeIntervalSince(oldest))
                }
            }
            if let wait = waits.max() { return max(1, Int(wait.rounded(.up))) }
            if state.failures.count >= capacity { Self.forgetOldest(&state, now: now) }
            for (key, _) in keys { state.failures[key, default: []].append(now) }
            return nil
        }
    }

    /// Takes back the attempt of a sign-in that succeeded, and clears the account's failures.
    func succeeded(account: String, address: String?) {
        state.withLock { state in
            state.failures["account:" + account] = nil
            if let address, var recent = state.failures["address:" + address], !recent.isEmpty {
                recent.removeLast()
                state.failures["address:" + address] = recent.isEmpty ? nil : recent
            }
        }
    }

    /// Makes room by forgetting the keys whose latest failure is oldest (a tenth of them),
    /// rather than all: spraying new emails cannot wipe the record of the others.
    private static func forgetOldest(_ state: inout State, now: Date) {
        let byLatest = state.failures.sorted { ($0.value.last ?? now) < ($1.value.last ?? now) }
        for (key, _) in byLatest.prefix(max(1, byLatest.count / 10)) { state.failures[key] = nil }
    }

    private func keys(account: String, address: String?) -> [(String, Int)] {
        [("account:" + account, perAccount)] + (address.map { [("address:" + $0, perAddress)] } ?? [])
    }
}
