import Directory
import Billing
import Crypto
import Foundation
import Providers

/// Who is calling the management API, and what they may do.
public struct AdminPrincipal: Sendable, Equatable {
    /// Roles, most powerful first. Users with narrower roles arrive with the users issue;
    /// every management route already states the role it needs.
    public enum Role: Int, Sendable, Comparable {
        case admin = 3
        case operator_ = 2
        case analyst = 1

        public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var name: String
    public var role: Role

    /// - Throws: `OpenAIError` 403 when the principal's role is below `role`.
    public func require(_ role: Role) throws(OpenAIError) {
        guard self.role >= role else {
            throw OpenAIError(status: 403, message: "This action needs a more privileged role.", type: "permission_error", code: "forbidden")
        }
    }
}

/// Authenticates management requests by the admin token.
public struct AdminAuthenticator: Sendable {
    private let tokenHash: [UInt8]

    public init(token: String) {
        self.tokenHash = Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// - Throws: `OpenAIError` 401 for a missing or wrong token.
    public func authenticate(authorization: String?) throws(OpenAIError) -> AdminPrincipal {
        guard let authorization, authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            throw OpenAIError(status: 401, message: "Send the admin token as 'Authorization: Bearer <token>'.", type: "invalid_request_error", code: "invalid_admin_token")
        }
        let presented = Array(SHA256.hash(data: Array(authorization.dropFirst(7).utf8)))
        guard constantTimeEqual(presented, tokenHash) else {
            throw OpenAIError(status: 401, message: "The admin token is not valid.", type: "invalid_request_error", code: "invalid_admin_token")
        }
        return AdminPrincipal(name: "admin-token", role: .admin)
    }
}

/// Where the admin token comes from: the environment, else a 0600 file beside the
/// database, created with a new random token on first start.
public enum AdminToken {
    /// The token file for a database path: `X.sqlite` -> `X.admin-token`.
    public static func filePath(forDatabase path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingPathExtension().appendingPathExtension("admin-token").path
    }

    /// Shows a newly created token once: on standard output, flushed at once (a pipe or
    /// file would otherwise hold it until exit), and on standard error, where service
    /// managers keep what a process says.
    public static func announce(_ token: String, savedTo path: String) {
        let banner = "Generated an admin token (shown once; also saved with mode 0600 to \(path)):\n  \(token)\n"
        FileHandle.standardOutput.write(Data(banner.utf8))
        FileHandle.standardError.write(Data(banner.utf8))
    }

    /// Returns the token and whether it was just created (and should be shown once).
    public static func resolve(environment: [String: String], databasePath: String) throws -> (token: String, created: Bool) {
        if let token = environment["SWITCHYARD_ADMIN_TOKEN"], !token.isEmpty { return (token, false) }
        let path = filePath(forDatabase: databasePath)
        if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
            let token = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return (token, false) }
        }
        let token = "sy-admin-" + Identifier.randomBase62(length: 40)
        try PrivateFiles.createDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError(path: path, message: "cannot write the admin token file")
        }
        return (token, true)
    }
}
