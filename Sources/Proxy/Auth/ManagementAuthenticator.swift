import Crypto
import Directory
import Foundation
import HTTPTypes
import Providers

/// Turns the credentials of a management request into its principal: the admin token, a
/// user's session or personal access token as a bearer token, or the portal's session
/// cookie (whose writes must carry the session's CSRF token).
struct ManagementAuthenticator: Sendable {
    static let sessionScheme = "sy-session-"
    static let accessTokenScheme = "sy-pat-"
    static let sessionCookie = "switchyard_session"
    static let csrfHeader = HTTPField.Name("x-csrf-token")!
    static let secretLength = 43

    let directory: Directory
    private let adminTokenHash: [UInt8]
    /// Where access tokens' last use is noted (written in batches).
    private let uses: KeyUseRecorder?

    init(directory: Directory, adminToken: String, uses: KeyUseRecorder? = nil) {
        self.directory = directory
        self.adminTokenHash = Array(SHA256.hash(data: Array(adminToken.utf8)))
        self.uses = uses
    }

    /// A new session or access token secret (scheme + 43 base62 characters, about 256
    /// bits), its hash and its display prefix.
    static func generate(scheme: String) -> (secret: String, hash: [UInt8], prefix: String) {
        let secret = scheme + Identifier.randomBase62(length: secretLength)
        return (secret, TenantKeySecret.hash(secret), String(secret.prefix(scheme.count + 6)))
    }

    /// The CSRF token of a session: derived from its secret, so it needs no storage and
    /// dies with the session. Cookie-authenticated writes send it as `x-csrf-token`.
    static func csrfToken(forSession secret: some StringProtocol) -> String {
        let key = SymmetricKey(data: Array(secret.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("switchyard-csrf".utf8), using: key)
        return Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// - Throws: `OpenAIError` 401 for missing, unknown, expired or revoked credentials,
    ///   403 `csrf_failed` for a cookie-authenticated write without the session's CSRF token.
    func authenticate(_ headers: HTTPFields, method: HTTPRequest.Method, now: Date = Date()) async throws -> Principal {
        if let authorization = headers[.authorization] {
            guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
                throw Self.unauthenticated("Send 'Authorization: Bearer <token>' with a session, access token or the admin token.")
            }
            let token = authorization.dropFirst(7).drop { $0 == " " }
            if constantTimeEqual(TenantKeySecret.hash(token), adminTokenHash) { return .adminToken }
            if token.hasPrefix(Self.sessionScheme) {
                return try await principal(secret: token, kind: .session, viaCookie: false, now: now)
            }
            if token.hasPrefix(Self.accessTokenScheme) {
                return try await principal(secret: token, kind: .accessToken, viaCookie: false, now: now)
            }
            throw Self.unauthenticated("The token is not valid.")
        }
        if let secret = Self.cookie(Self.sessionCookie, in: headers) {
            let principal = try await principal(secret: Substring(secret), kind: .session, viaCookie: true, now: now)
            if method != .get, method != .head {
                let expected = Array(Self.csrfToken(forSession: secret).utf8)
                guard let sent = headers[Self.csrfHeader], constantTimeEqual(Array(sent.utf8), expected) else {
                    throw OpenAIError(
                        status: 403, message: "A write with the session cookie must send the session's CSRF token as 'x-csrf-token'.",
                        type: "permission_error", code: "csrf_failed"
                    )
                }
            }
            return principal
        }
        throw Self.unauthenticated("Sign in (POST /auth/login) or send 'Authorization: Bearer <token>'.")
    }

    private func principal(secret: Substring, kind: Credential.Kind, viaCookie: Bool, now: Date) async throws -> Principal {
        let scheme = kind == .session ? Self.sessionScheme : Self.accessTokenScheme
        guard secret.utf8.count == scheme.utf8.count + Self.secretLength else { throw Self.unauthenticated("The token is not valid.") }
        let hash = TenantKeySecret.hash(secret)
        guard let (credential, user) = try await directory.credential(secretHash: hash),
              credential.kind == kind,
              constantTimeEqual(credential.secretHash, hash)
        else { throw Self.unauthenticated("The token is not valid.") }
        guard credential.isUsable(at: now) else {
            throw Self.unauthenticated(kind == .session ? "The session has ended; sign in again." : "The access token has expired or was revoked.")
        }
        let principalCredential: Principal.Credential = switch kind {
        case .session: .session(id: credential.id, viaCookie: viaCookie)
        case .accessToken: .accessToken(id: credential.id)
        }
        if kind == .accessToken { uses?.record(credentialID: credential.id, at: now) }
        return Principal(credential: principalCredential, role: user.role, user: user, tenantID: user.tenantID)
    }

    /// The value of cookie `name` in the request's `Cookie` headers.
    static func cookie(_ name: String, in headers: HTTPFields) -> String? {
        for header in headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    static func unauthenticated(_ message: String) -> OpenAIError {
        OpenAIError(status: 401, message: message, type: "invalid_request_error", code: "unauthenticated")
    }
}
