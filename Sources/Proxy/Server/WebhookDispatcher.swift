import AsyncHTTPClient
import Billing
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Sends the webhook outbox: every alert the ledger recorded with its crossing, signed, off
/// the request path, retried with exponential backoff for 24 hours. It also records each
/// budget's `budget.reset` once its new period has begun.
///
/// Deliveries live in the ledger, so they survive restarts; a delivery is claimed for a
/// while before it is sent, so processes sharing the database never send one at once.
/// Delivery is at least once: a receiver that answers too late gets the delivery again,
/// with the same `id`.
///
/// Each POST carries `x-switchyard-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>" keyed with the webhook's secret>`.
final class WebhookDispatcher: Service, Sendable {
    struct Options: Sendable {
        /// How often the outbox is looked at when nothing is due sooner.
        var pollInterval: Duration = .seconds(1)
        /// The wait after the first failed attempt; it doubles with each further failure.
        var firstRetryDelay: Duration = .seconds(1)
        /// The longest wait between attempts.
        var longestRetryDelay: Duration = .seconds(3600)
        /// How long after its alert a delivery is given up.
        var retryWindow: Duration = .seconds(24 * 3600)
        /// The longest one attempt may take.
        var attemptTimeout: Duration = .seconds(10)
        /// The most deliveries sent at once.
        var batchSize = 32
    }

    private let ledger: Ledger
    private let httpClient: HTTPClient
    private let cipher: ProviderKeyCipher
    private let options: Options
    private let logger: Logger

    init(ledger: Ledger, httpClient: HTTPClient, cipher: ProviderKeyCipher, options: Options = Options(), logger: Logger) {
        self.ledger = ledger
        self.httpClient = httpClient
        self.cipher = cipher
        self.options = options
        self.logger = logger
    }

    func run() async throws {
        // Every period begins at midnight UTC: resets are looked for at start-up and once
        // each new day has begun (a write transaction over every budget, so not more often).
        var resetsRecordedFor: Date?
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let today = BudgetPeriod.day.interval(containing: Date()).start
            if resetsRecordedFor != today {
                do {
                    _ = try await ledger.rollOverBudgets(now: Date())
                    resetsRecordedFor = today
                } catch {
                    logger.error("recording budget resets failed; will retry", metadata: ["error": "\(error)"])
                }
            }
            var sent = 0
            do {
                sent = try await sendDue(now: Date())
            } catch {
                logger.error("reading the webhook outbox failed; will retry", metadata: ["error": "\(error)"])
            }
            // A full batch may have more behind it.
            if sent >= options.batchSize { continue }
            var wait = options.pollInterval
            if let next = try? await ledger.nextDueDate() {
                let untilNext = Duration.milliseconds(Int64(max(0, next.timeIntervalSinceNow * 1000)))
                wait = min(wait, max(.milliseconds(10), untilNext))
            }
            let pause = wait
            try? await cancelWhenGracefulShutdown {
                try await Task.sleep(for: pause)
            }
        }
    }

    /// Sends what is due at `now`, all at once; returns how many were attempted.
    @discardableResult
    func sendDue(now: Date) async throws -> Int {
        let due = try await ledger.claimDueDeliveries(now: now, limit: options.batchSize, lease: options.attemptTimeout * 3)
        await withTaskGroup(of: Void.self) { group in
            for delivery in due {
                group.addTask { await self.attempt(delivery) }
            }
        }
        return due.count
    }

    private func attempt(_ delivery: WebhookDelivery) async {
        let outcome: (status: Int?, error: String?)
        do {
            let secret = try cipher.open(delivery.sealedSecret, keyID: delivery.webhookID)
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "Switchyard-Webhooks/1")
            request.headers.add(name: "x-switchyard-event", value: delivery.event)
            request.headers.add(name: "x-switchyard-delivery", value: delivery.id)
            request.headers.add(
                name: "x-switchyard-signature",
                value: Self.signature(payload: delivery.payload, secret: secret, at: Date())
            )
            request.body = .bytes(ByteBuffer(string: delivery.payload))
            let response = try await httpClient.execute(request, timeout: .init(options.attemptTimeout))
            // The answer's body is not wanted, but reading it returns the connection.
            _ = try? await response.body.collect(upTo: 64 << 10)
            let status = Int(response.status.code)
            outcome = (200..<300).contains(status) ? (status, nil) : (status, "the receiver answered \(status)")
        } catch {
            outcome = (nil, NetworkFailureText.describe(error))
        }
        let now = Date()
        do {
            if outcome.error == nil, let status = outcome.status {
                try await ledger.markDelivered(id: delivery.id, status: status, now: now)
                return
            }
            let next = nextAttempt(after: delivery, now: now)
            try await ledger.markAttemptFailed(
                id: delivery.id, status: outcome.status, error: outcome.error ?? "failed", nextAttemptAt: next, now: now
            )
            if next == nil {
                logger.warning(
                    "webhook delivery given up after 24 h",
                    metadata: ["delivery": "\(delivery.id)", "webhook": "\(delivery.webhookID)", "event": "\(delivery.event)"]
                )
            }
        } catch {
            // The claim lapses and the delivery is tried again.
            logger.error("recording a webhook attempt failed", metadata: ["delivery": "\(delivery.id)", "error": "\(error)"])
        }
    }

    /// When to try a delivery next after `delivery.attempts` attempts, doubling from the first
    /// delay; nil once that would be past the retry window.
    func nextAttempt(after delivery: WebhookDelivery, now: Date) -> Date? {
        let failures = max(1, delivery.attempts)
        var delay = options.firstRetryDelay
        for _ in 1..<min(failures, 40) where delay < options.longestRetryDelay {
            delay *= 2
        }
        delay = min(delay, options.longestRetryDelay)
        let next = now.addingTimeInterval(delay.timeInterval)
        return next.timeIntervalSince(delivery.createdAt) > options.retryWindow.timeInterval ? nil : next
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`.
    static func signature(payload: String, secret: String, at date: Date) -> String {
        let timestamp = Int64(date.timeIntervalSince1970)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(timestamp).\(payload)".utf8), using: SymmetricKey(data: Data(secret.utf8))
        )
        return "t=\(timestamp),v1=" + mac.map { String(format: "%02x", $0) }.joined()
    }
}

extension Duration {
    /// The duration in seconds, as a `TimeInterval`.
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

/// Short words for why an HTTP attempt failed, for the delivery's `last_error`.
enum NetworkFailureText {
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "connect timed out"
            case .deadlineExceeded, .readTimeout: return "timed out"
            case .remoteConnectionClosed: return "the connection closed"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.first.map { "cannot connect: \($0.error)" } ?? "cannot connect to \(error.host):\(error.port)"
        }
        return String(describing: error).prefix(200).description
    }
}
