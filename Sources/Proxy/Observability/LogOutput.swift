import Foundation
import Synchronization

/// Where log lines go: a file descriptor (standard output), written by a queue of its own
/// so that no request waits for a slow terminal, pipe or disk. Lines written while a
/// write is under way are batched into the next one. When more than `limit` bytes wait,
/// new lines are dropped and counted rather than held, and a line says how many.
public final class LogOutput: Sendable {
    /// Standard output, shared by every logger of the process.
    public static let standardOutput = LogOutput(descriptor: STDOUT_FILENO)

    private struct State {
        var pending: [UInt8] = []
        var scheduled = false
        var dropped = 0
    }

    private let descriptor: Int32
    private let limit: Int
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "switchyard.log-output")

    public init(descriptor: Int32, limit: Int = 8 << 20) {
        self.descriptor = descriptor
        self.limit = limit
    }

    /// Queues one line (which ends with a newline).
    public func write(_ line: [UInt8]) {
        let schedule = state.withLock { state -> Bool in
            guard state.pending.count + line.count <= limit else {
                state.dropped += 1
                return false
            }
            state.pending.append(contentsOf: line)
            guard !state.scheduled else { return false }
            state.scheduled = true
            return true
        }
        if schedule {
            queue.async { self.drain() }
        }
    }

    /// Writes everything queued before returning (at exit).
    public func flush() {
        queue.sync { self.drain() }
    }

    private func drain() {
        let (bytes, dropped) = state.withLock { state -> ([UInt8], Int) in
            let taken = (state.pending, state.dropped)
            state.pending = []
            state.pending.reserveCapacity(min(taken.0.count, 64 << 10))
            state.dropped = 0
            state.scheduled = false
            return taken
        }
        writeAll(bytes)
        if dropped > 0 {
            writeAll(Array("{\"level\":\"warning\",\"msg\":\"\(dropped) log lines dropped: the output could not keep up\"}\n".utf8))
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    // A closed or failing output: what cannot be written is lost, not retried forever.
                    return
                }
            }
        }
    }
}
