import Directory
import Billing
import Synchronization

/// Request ids: a random per-process prefix and a counter, so making one costs no
/// system call yet ids from different processes do not collide.
enum RequestIDs {
    private static let prefix = "req_" + Identifier.randomBase62(length: 10)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let value = counter.add(1, ordering: .relaxed).newValue
        return prefix + String(value, radix: 36)
    }
}
