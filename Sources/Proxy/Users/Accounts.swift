import Foundation

/// How users sign in and are invited: session lifetime, the sign-in throttle, where
/// invite links point, and the mail relay invites go through (none: links only).
public struct AccountSettings: Sendable {
    /// How long a session lasts from sign-in.
    public var sessionLifetime: TimeInterval
    /// How long an invite can be accepted.
    public var inviteLifetime: TimeInterval
    /// The URL invite links start with (`https://switchyard.example.com`); nil: the
    /// request's own host, over http.
    public var publicURL: String?
    /// `SWITCHYARD_SMTP_URL`: where invite mails are sent; nil sends none.
    public var smtpURL: String?

    public init(
        sessionLifetime: TimeInterval = 12 * 3600, inviteLifetime: TimeInterval = 7 * 86_400, publicURL: String? = nil,
        smtpURL: String? = nil
    ) {
        self.sessionLifetime = sessionLifetime
        self.inviteLifetime = inviteLifetime
        self.publicURL = publicURL
        self.smtpURL = smtpURL
    }
}

/// What the account routes share: the settings, the mailer made from them, the throttle.
struct Accounts: Sendable {
    let settings: AccountSettings
    let mailer: SMTPMailer?
    let throttle = LoginThrottle()

    init(settings: AccountSettings) throws {
        self.settings = settings
        self.mailer = try settings.smtpURL.map { try SMTPMailer(configuration: try SMTPConfiguration(url: $0)) }
        // The decoy hash costs one bcrypt: pay it at start-up, not in the first sign-in
        // of an unknown email (on a thread of the concurrency pool).
        _ = Passwords.decoy
    }

    /// `; Secure` when people reach Switchyard over https, so the browser never sends the
    /// session cookie in clear.
    var cookieSecurity: String {
        settings.publicURL?.lowercased().hasPrefix("https://") == true ? "; Secure" : ""
    }

    /// The link that accepts an invite: the portal's page, which posts to
    /// `/auth/invites/{token}/accept`.
    func acceptURL(token: String, host: String?) -> String {
        let base = settings.publicURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            ?? "http://\(host ?? "localhost")"
        return "\(base)/portal/invite#\(token)"
    }
}
