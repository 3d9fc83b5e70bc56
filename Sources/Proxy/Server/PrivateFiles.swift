import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files only Switchyard's user may read: the ledger (tenants, key hashes, usage), its
/// write-ahead log and shared memory, and the secrets beside it.
public enum PrivateFiles {
    /// Creates `directory` and any missing parents with mode 0700; existing ones are left
    /// as they are.
    public static func createDirectory(_ directory: String) throws {
        var missing: [String] = []
        var url = URL(fileURLWithPath: directory).standardizedFileURL
        while !FileManager.default.fileExists(atPath: url.path), url.path != "/" {
            missing.append(url.path)
            url = url.deletingLastPathComponent()
        }
        for path in missing.reversed() where mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
    }

    /// Creates an empty file with mode 0600 unless one exists. SQLite gives the `-wal`
    /// and `-shm` files the database file's mode, so creating it private keeps them so.
    public static func createFile(_ path: String) throws {
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            close(descriptor)
        } else if errno != EEXIST {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
    }

    /// The database's files (itself, `-wal`, `-shm`) that exist and that the group or
    /// others may read or write, with their modes.
    public static func exposedDatabaseFiles(_ path: String) -> [(path: String, mode: Int)] {
        [path, path + "-wal", path + "-shm"].compactMap { file in
            var info = stat()
            guard stat(file, &info) == 0 else { return nil }
            let mode = Int(info.st_mode) & 0o777
            return mode & 0o077 != 0 ? (file, mode) : nil
        }
    }
}
