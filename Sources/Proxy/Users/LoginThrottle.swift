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

    /// Seconds to wait before trying again, or nil when a sign-in may be tried now.
    func retryAfter(account: String, address: String?, now: Date = Date()) -> Int? {
        state.withLock { state in
            var waits: [TimeInterval] = []
            for (key, limit) in keys(account: account, address: address) {
                let recent = (state.failures[key] ?? []).filter { now.timeIntervalSince($0) < window }
                state.failures[key] = recent.isEmpty ? nil : recent
                if recent.count >= limit, let oldest = recent.first {
                    waits.append(window - now.timeIntervalSince(oldest))
                }
            }
            return waits.max().map { max(1, Int($0.rounded(.up))) }
        }
    }

    /// Notes a failed sign-in.
    func failed(account: String, address: String?, now: Date = Date()) {
        state.withLock { state in
            if state.failures.count >= capacity { state.failures.removeAll(keepingCapacity: true) }
            for (key, _) in keys(account: account, address: address) {
                state.failures[key, default: []].append(now)
            }
        }
    }

    /// Clears an account's failures after it signed in.
    func succeeded(account: String) {
        _ = state.withLock { $0.failures.removeValue(forKey: "account:" + account) }
    }

    private func keys(account: String, address: String?) -> [(String, Int)] {
        [("account:" + account, perAccount)] + (address.map { [("address:" + $0, perAddress)] } ?? [])
    }
}
