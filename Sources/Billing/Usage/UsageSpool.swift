import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The replica's spool: usage events not yet delivered to the ledger (or the usage
/// stream), one JSON line each, in segment files of a directory beside the database.
///
/// An event is appended with one `write` on a file opened `O_APPEND`: once the call
/// returns, the event survives the process being killed (the kernel holds it), without
/// waiting for the disk; ``UsageSpool/syncInBackground(every:)`` calls `fdatasync` off the
/// request path so it also survives the machine stopping, a moment later. The writer
/// seals the current segment when it takes a batch, and removes a sealed segment once its
/// events are delivered.
///
/// Replicas may share a spool root (they share the database file beside it): each claims
/// a `replica-N` directory of its own, held with `flock` for as long as it runs. At start
/// a process also adopts the segments of every directory no running process holds (a
/// replica that was killed and not restarted), so they are delivered first.
public final class UsageSpool: Sendable {
    /// A sealed segment: its events are delivered, then it is removed.
    public struct Segment: Sendable, Hashable, Comparable {
        public var sequence: UInt64
        public var path: String

        public static func < (lhs: Segment, rhs: Segment) -> Bool { lhs.sequence < rhs.sequence }
    }

    /// An open segment file; closed when the last reference goes (the background sync may
    /// hold one while the writer has moved on).
    private final class OpenFile: Sendable {
        let descriptor: Int32
        let segment: Segment

        init(descriptor: Int32, segment: Segment) {
            self.descriptor = descriptor
            self.segment = segment
        }

        deinit { close(descriptor) }
    }

    private struct State {
        var current: OpenFile?
        var nextSequence: UInt64
        /// Bytes appended since the last sync.
        var unsynced = false
        /// Sealed segments still open, by sequence: synced if their delivery fails.
        var sealed: [UInt64: OpenFile] = [:]
    }

    /// The directory this process claimed.
    public let directory: String
    private let lockDescriptor: Int32
    private let state: Mutex<State>
    /// The segments found at start-up: this directory's and the adopted ones, oldest first.
    public let leftOver: [Segment]

    /// Claims a directory under `root` (making them if need be) and adopts orphaned segments.
    /// - Throws: ``UsageSpoolError`` when the directories cannot be made or read.
    public init(root: String) throws {
        try Self.makeDirectory(root)
        let existing = try Self.replicaDirectories(in: root)
        var claimed: (path: String, lock: Int32)?
        for path in existing {
            if let lock = try Self.lock(path) {
                claimed = (path, lock)
                break
            }
        }
        if claimed == nil {
            // Every directory is held: make the next one. Another process starting at the
            // same moment may take it first; then try the one after.
            var number = (existing.compactMap { Int($0.split(separator: "-").last ?? "") }.max() ?? 0) + 1
            while claimed == nil {
                let path = root + "/replica-\(number)"
                try Self.makeDirectory(path)
                if let lock = try Self.lock(path) { claimed = (path, lock) }
                number += 1
            }
        }
        guard let claimed else { throw UsageSpoolError(message: "cannot claim a spool directory in \(root)") }
        self.directory = claimed.path
        self.lockDescriptor = claimed.lock
        do {
            var segments = try Self.segments(in: claimed.path)
            var next = (segments.last?.sequence ?? 0) + 1
            for other in existing where other != claimed.path {
                guard let lock = try Self.lock(other) else { continue }
                defer { close(lock) }
                for orphan in try Self.segments(in: other) {
                    let moved = Segment(sequence: next, path: Self.path(directory: claimed.path, sequence: next))
                    guard rename(orphan.path, moved.path) == 0 else { continue }
                    segments.append(moved)
                    next += 1
                }
            }
            self.leftOver = segments
            self.state = Mutex(State(nextSequence: next))
        } catch {
            close(claimed.lock)
            throw error
        }
    }

    deinit {
        close(lockDescriptor)
    }

    /// Appends one event line: its wire JSON and a newline. Returns false when it could not
    /// be written (the disk is full, or the directory is gone); the caller keeps the event
    /// in memory then.
    public func append(_ line: [UInt8]) -> Bool {
        state.withLock { state -> Bool in
            if state.current == nil {
                let segment = Segment(
                    sequence: state.nextSequence, path: Self.path(directory: directory, sequence: state.nextSequence)
                )
                let descriptor = open(segment.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
                guard descriptor >= 0 else { return false }
                state.nextSequence += 1
                state.current = OpenFile(descriptor: descriptor, segment: segment)
            }
            guard let file = state.current else { return false }
            let written = Self.writeLine(file.descriptor, line)
            if written != line.count {
                // A part-written line would run into the next one: end it, so a reader
                // skips just this line. The event stays in memory.
                if written > 0 { _ = write(file.descriptor, "\n", 1) }
                return false
            }
            state.unsynced = true
            return true
        }
    }

    /// Ends the current segment, which the caller is about to deliver; the next append
    /// starts a new one. nil when nothing was appended since the last seal. Cheap: the
    /// writer calls it while appends wait.
    public func seal() -> Segment? {
        state.withLock { state -> Segment? in
            guard let file = state.current else { return nil }
            state.current = nil
            state.unsynced = false
            state.sealed[file.segment.sequence] = file
            return file.segment
        }
    }

    /// Flushes a sealed segment to the disk: for one whose delivery failed, which may wait
    /// on disk for a while.
    public func sync(_ segment: Segment) {
        let file = state.withLock { $0.sealed[segment.sequence] }
        if let file { _ = fdatasync(file.descriptor) }
    }

    /// Removes a segment whose events are delivered.
    public func remove(_ segment: Segment) {
        state.withLock { _ = $0.sealed.removeValue(forKey: segment.sequence) }
        unlink(segment.path)
    }

    /// The events of a sealed segment, and how many lines of it could not be read (a line
    /// cut off when the machine stopped mid-write).
    public func read(_ segment: Segment) throws -> (events: [UsageEvent], unreadable: Int) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: segment.path))
        } catch {
            throw UsageSpoolError(message: "cannot read the spool segment \(segment.path): \(error.localizedDescription)")
        }
        var events: [UsageEvent] = []
        var unreadable = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if let event = try? UsageEvent(wireJSON: line) {
                events.append(event)
            } else {
                unreadable += 1
            }
        }
        return (events, unreadable)
    }

    /// How many event lines a segment holds, without reading them as events.
    public func lineCount(_ segment: Segment) -> Int {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: segment.path)) else { return 0 }
        return data.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
    }

    /// Flushes what was appended to the disk, every `interval`, until cancelled. The
    /// append path never waits for this.
    public func syncInBackground(every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            sync()
        }
    }

    /// Flushes the current segment to the disk, if anything was appended since the last time.
    public func sync() {
        let file = state.withLock { state -> OpenFile? in
            guard state.unsynced else { return nil }
            state.unsynced = false
            return state.current
        }
        if let file { _ = fdatasync(file.descriptor) }
    }

    // MARK: Files

    private static func path(directory: String, sequence: UInt64) -> String {
        let digits = String(sequence)
        return directory + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".events"
    }

    private static func makeDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw UsageSpoolError(message: "cannot make the spool directory \(path): \(error.localizedDescription)")
        }
    }

    /// The `replica-N` directories under `root`, by number.
    private static func replicaDirectories(in root: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: root)
        } catch {
            throw UsageSpoolError(message: "cannot read the spool directory \(root): \(error.localizedDescription)")
        }
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("replica-"), let number = Int(name.dropFirst("replica-".count)) else { return nil }
            return (number, root + "/" + name)
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Locks a replica directory; nil when a running process holds it.
    private static func lock(_ directory: String) throws -> Int32? {
        let lockPath = directory + "/lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else {
            throw UsageSpoolError(message: "cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            return nil
        }
        return lock
    }

    private static func segments(in directory: String) throws -> [Segment] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw UsageSpoolError(message: "cannot read the spool directory \(directory): \(error.localizedDescription)")
        }
        return names.compactMap { name -> Segment? in
            guard name.hasSuffix(".events"), let sequence = UInt64(name.dropLast(".events".count)) else { return nil }
            return Segment(sequence: sequence, path: directory + "/" + name)
        }.sorted()
    }

    /// Writes `line`, in one system call when it can (a short write or an interruption is
    /// retried); returns the bytes written.
    private static func writeLine(_ descriptor: Int32, _ line: [UInt8]) -> Int {
        line.withUnsafeBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var offset = 0
            while offset < buffer.count {
                let result = write(descriptor, base + offset, buffer.count - offset)
                if result > 0 {
                    offset += result
                } else if result < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            return offset
        }
    }
}

/// The spool could not be opened or read.
public struct UsageSpoolError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
