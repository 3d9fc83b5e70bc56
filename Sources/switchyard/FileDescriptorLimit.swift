#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit, which bounds how many connections it can hold.
enum FileDescriptorLimit {
    #if canImport(Glibc)
    private static let resource = Int32(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif

    /// Raises the soft `RLIMIT_NOFILE` to the hard limit, which needs no privilege: a
    /// server at the default soft limit (often 1024) runs out of descriptors long before
    /// its memory runs out. Returns the soft limit in force afterwards.
    static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// The client connections that fit in `descriptors`: each may hold an upstream
    /// connection too, and the ledger, Redis and the listening socket need a few.
    static func connectionsWithin(_ descriptors: Int, requested: Int) -> Int {
        let reserved = 64
        return max(1, min(requested, (descriptors - reserved) / 2))
    }
}
