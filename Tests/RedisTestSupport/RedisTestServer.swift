import Foundation
import Pools

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `redis-server` for one test: on a free port, in its own temporary folder, with
/// no persistence. Shared by the test targets that need one (they cannot import each other). `stop()` and `start()` again keep the port, to test reconnecting.
///
/// `@unchecked Sendable` because its mutable state (the process) is only touched under
/// `lock`; tests share it between tasks only to call commands on the client.
public final class RedisTestServer: @unchecked Sendable {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "redis-server is not on PATH: install it (scripts/install-deps.sh, or apt-get install redis-server)"
        }
    }

    public let port: Int
    public let password: String?
    private let directory: URL
    private let executable: URL
    private let lock = NSLock()
    private var process: Process?

    /// Starts a server and waits until it answers PING.
    ///
    /// - Parameter password: set with `--requirepass` when given.
    public init(password: String? = nil) throws {
        guard let executable = Self.findOnPath("redis-server") else { throw Missing() }
        self.executable = executable
        self.password = password
        self.port = try Self.freePort()
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchyard-redis-\(port)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The URL of this server, with its password when it has one.
    public func url(database: Int = 0) -> String {
        let encoded = password.map { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0 }
        let credentials = encoded.map { ":\($0)@" } ?? ""
        return "redis://\(credentials)127.0.0.1:\(port)/\(database)"
    }

    /// A client configuration for this server.
    public func configuration(
        database: Int = 0,
        commandTimeout: Duration = .seconds(2),
        poolSize: Int = 4
    ) throws -> RedisConfiguration {
        try RedisConfiguration(url: url(database: database), commandTimeout: commandTimeout, poolSize: poolSize)
    }

    /// Starts the server (again) on the same port and waits until it answers PING.
    public func start() throws {
        var arguments = [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", directory.path, "--daemonize", "no", "--loglevel", "warning",
        ]
        // Redis 7 refuses DEBUG (used to make a command slow) unless enabled; 6 has no such option.
        if try Self.majorVersion(of: executable) >= 7 { arguments += ["--enable-debug-command", "yes"] }
        if let password { arguments += ["--requirepass", password] }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        lock.withLock { self.process = process }

        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if answersPing() { return }
            guard process.isRunning else { break }
            usleep(20_000)
        }
        stop()
        throw ServerDidNotStart(port: port)
    }

    /// Stops the server and waits until it has exited.
    public func stop() {
        guard let process = lock.withLock({ () -> Process? in
            defer { self.process = nil }
            return self.process
        }) else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    public struct ServerDidNotStart: Error, CustomStringConvertible {
        public let port: Int
        public var description: String { "redis-server did not answer PING on port \(port) within 10 s" }
    }

    // MARK: - Sockets

    /// Sends an inline PING over a plain socket; a server that requires a password answers
    /// `-NOAUTH`, which is an answer too.
    private func answersPing() -> Bool {
        let descriptor = socket(AF_INET, Self.streamType, 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = Self.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return false }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let ping = Array("PING\r\n".utf8)
        guard write(descriptor, ping, ping.count) == ping.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(descriptor, &buffer, buffer.count)
        guard count > 0 else { return false }
        let reply = String(decoding: buffer.prefix(count), as: UTF8.self)
        return reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH")
    }

    /// A port nobody listens on: bind to port 0, read the port the kernel chose, close.
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, streamType, 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(descriptor) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw POSIXError(.EINVAL) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// A socket that listens on a free port and never accepts, with the smallest backlog:
    /// once the backlog is full, connecting hangs, the way it does to a host that drops
    /// packets. Close the descriptor when done.
    public static func silentListener() throws -> (descriptor: Int32, port: Int) {
        let descriptor = socket(AF_INET, streamType, 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard bound == 0, named == 0, listen(descriptor, 0) == 0 else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    private static var streamType: Int32 {
        #if canImport(Glibc)
        Int32(SOCK_STREAM.rawValue)
        #else
        SOCK_STREAM
        #endif
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr = in_addr(s_addr: UInt32(0x7F00_0001).bigEndian)
        return address
    }

    /// The major version `redis-server --version` reports (`Redis server v=7.0.15 …`).
    private static func majorVersion(of executable: URL) throws -> Int {
        let process = Process()
        let output = Pipe()
        process.executableURL = executable
        process.arguments = ["--version"]
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let start = text.firstRange(of: "v=")?.upperBound else { return 0 }
        return Int(text[start...].prefix { $0.isNumber }) ?? 0
    }

    private static func findOnPath(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }
}

/// Runs `body` with a fresh server and a client for it; stops both afterwards, whether
/// `body` succeeds or throws.
public func withRedis<Result>(
    password: String? = nil,
    database: Int = 0,
    commandTimeout: Duration = .seconds(2),
    poolSize: Int = 4,
    _ body: (RedisTestServer, RedisClient) async throws -> Result
) async throws -> Result {
    let server = try RedisTestServer(password: password)
    defer { server.stop() }
    let client = RedisClient(
        configuration: try server.configuration(database: database, commandTimeout: commandTimeout, poolSize: poolSize)
    )
    do {
        let result = try await body(server, client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}
