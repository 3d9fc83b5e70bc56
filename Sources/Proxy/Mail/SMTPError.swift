import Foundation

/// Why a mail was not sent: the step that failed and, when the server refused, its reply.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    /// Where the mail failed, before the conversation (`configuration`, `message`) or in it.
    public enum Step: String, Sendable {
        case configuration, message, connect, greeting
        case ehlo = "EHLO", startTLS = "STARTTLS", auth = "AUTH", mailFrom = "MAIL FROM"
        case recipient = "RCPT TO", data = "DATA", quit = "QUIT"
    }

    /// What went wrong; internal so tests can match it, callers read `description`.
    enum Kind: Sendable, Equatable {
        case invalidURL(String)
        case unsafeField(String)
        case invalidAddress(String)
        case unexpectedReply
        case timedOut
        case connectionClosed
        case cleartextCredentials
        case authUnsupported
        case protocolViolation(String)
        case tls(String)
        case transport(String)
    }

    public let step: Step
    /// The server's reply code, when it answered other than expected.
    public let replyCode: Int?
    /// The server's reply text, lines joined by " / ".
    public let replyText: String?
    let kind: Kind

    init(step: Step, kind: Kind, reply: SMTPReply? = nil) {
        self.step = step
        self.kind = kind
        self.replyCode = reply?.code
        self.replyText = reply?.lines.joined(separator: " / ")
    }

    public var description: String {
        switch kind {
        case .invalidURL(let reason): "invalid SMTP URL: \(reason)"
        case .unsafeField(let field): "mail refused: '\(field)' contains a line break or control character"
        case .invalidAddress(let field): "mail refused: '\(field)' is not a plain ASCII mail address"
        case .unexpectedReply: "SMTP \(step.rawValue) failed: the server replied \(replyCode ?? 0) \(replyText ?? "")"
        case .timedOut: "SMTP \(step.rawValue) timed out"
        case .connectionClosed: "SMTP \(step.rawValue) failed: the server closed the connection"
        case .cleartextCredentials: "SMTP AUTH refused: the server offers no TLS, and credentials are never sent in clear"
        case .authUnsupported: "SMTP AUTH failed: the server does not offer AUTH PLAIN"
        case .protocolViolation(let reason): "SMTP \(step.rawValue) failed: \(reason)"
        case .tls(let detail): "SMTP \(step.rawValue) failed: TLS: \(detail)"
        case .transport(let detail): "SMTP \(step.rawValue) failed: \(detail)"
        }
    }
}
