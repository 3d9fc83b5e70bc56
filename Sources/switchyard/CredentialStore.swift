import Foundation

/// The sessions `switchyard login` saved, one per server, in
/// `$XDG_CONFIG_HOME/switchyard/credentials` (default `~/.config/switchyard/credentials`).
///
/// The file is a JSON object keyed by server URL. It holds bearer secrets, so its folder is
/// made 0700 and the file is written 0600, atomically (a temporary file renamed over it):
/// a crash mid-write leaves the old file, never a torn one or one others can read.
struct CredentialStore {
    /// One saved session. The token is a secret: `description` leaves it out.
    struct Session: Codable, Sendable, CustomStringConvertible {
        var server: String
        var token: String
        var email: String
        var expiresAt: String?

        enum CodingKeys: String, CodingKey {
            case server, token, email
            case expiresAt = "expires_at"
        }

        var description: String { "session of \(email) on \(server)" }

        /// Whether the server's `expires_at` has passed; a time that does not parse counts
        /// as not ended, and the server decides.
        func hasEnded(at now: Date = Date()) -> Bool {
            guard let expiresAt, let end = CredentialStore.parseTime(expiresAt) else { return false }
            return end <= now
        }
    }

    let fileURL: URL

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        func path(_ name: String) -> URL? { environment[name].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) } }
        // $HOME before the password database, as other tools do (and as Foundation on
        // Linux does not), so a HOME pointed elsewhere keeps its own sessions.
        let home = path("HOME") ?? FileManager.default.homeDirectoryForCurrentUser
        let configHome = path("XDG_CONFIG_HOME") ?? home.appendingPathComponent(".config")
        fileURL = configHome.appendingPathComponent("switchyard").appendingPathComponent("credentials")
    }

    /// The session saved for `server` (a `ServerOptions.baseURL`), if any.
    func session(for server: String) throws -> Session? {
        try load()[server]
    }

    /// Saves `session` under its server, replacing the one saved before.
    func save(_ session: Session) throws {
        var sessions = try load()
        sessions[session.server] = session
        try write(sessions)
    }

    /// Forgets the session of `server`; returns whether there was one.
    @discardableResult
    func remove(server: String) throws -> Bool {
        var sessions = try load()
        guard sessions.removeValue(forKey: server) != nil else { return false }
        try write(sessions)
        return true
    }

    // MARK: File

    private func load() throws -> [String: Session] {
        guard FileManager.default.fileExists(atPath: fileURL.path) else { return [:] }
        do {
            return try JSONDecoder().decode([String: Session].self, from: Data(contentsOf: fileURL))
        } catch {
            throw CLIError("cannot read the saved sessions in \(fileURL.path): \(error.localizedDescription) (delete the file and sign in again)")
        }
    }

    private func write(_ sessions: [String: Session]) throws {
        let folder = fileURL.deletingLastPathComponent()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(sessions)
        do {
            try FileManager.default.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
            if mkdir(folder.path, 0o700) != 0, errno != EEXIST { throw POSIXError(errno) }
            // A folder made before, or by hand, is narrowed too: it holds only our secrets.
            guard chmod(folder.path, 0o700) == 0 else { throw POSIXError(errno) }
            let temporary = folder.appendingPathComponent(".credentials.\(getpid()).tmp")
            unlink(temporary.path)  // left by a crashed run with our pid
            let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw POSIXError(errno) }
            let written = data.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            let synced = fsync(descriptor)
            close(descriptor)
            guard written == data.count, synced == 0, rename(temporary.path, fileURL.path) == 0 else {
                let failure = errno
                unlink(temporary.path)
                throw POSIXError(failure)
            }
        } catch {
            throw CLIError("cannot save the session in \(fileURL.path): \(error.localizedDescription)")
        }
    }

    /// Parses the API's RFC 3339 times, with or without fractional seconds.
    static func parseTime(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

extension POSIXError {
    /// The error of a failed system call's `errno`.
    init(_ code: Int32) {
        self.init(POSIXErrorCode(rawValue: code) ?? .EIO)
    }
}
