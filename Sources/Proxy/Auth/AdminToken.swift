import Directory
import Billing
import Crypto
import Foundation
import Providers

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
