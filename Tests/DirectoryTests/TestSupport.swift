import Foundation
import GRDB
import Testing

@testable import Directory

/// A fresh folder under the system's temporary directory, removed by `remove()`.
struct TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-directory-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var databasePath: String { url.appendingPathComponent("switchyard.sqlite").path }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// The directory in a real SQLite file at `path`, in WAL mode as the proxy opens it.
func openDirectory(_ path: String) throws -> Directory {
    try Directory(pool: DatabasePool(path: path))
}

/// Runs `body` with a directory on a real SQLite file in a fresh temporary folder.
func withDirectory<Result>(_ body: (Directory, TemporaryFolder) async throws -> Result) async throws -> Result {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    return try await body(try openDirectory(folder.databasePath), folder)
}

/// A date on whole milliseconds, as the directory stores them, so round trips compare equal.
func date(_ iso: String) -> Date {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: iso) { return date.wholeMilliseconds }
    formatter.formatOptions = [.withInternetDateTime]
    guard let date = formatter.date(from: iso) else { fatalError("bad test date \(iso)") }
    return date.wholeMilliseconds
}
