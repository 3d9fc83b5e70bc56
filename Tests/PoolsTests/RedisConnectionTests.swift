import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import Pools
import RedisTestSupport

/// One hiredis connection, used directly (blocking) against a real redis-server.
@Suite("RedisConnection")
struct RedisConnectionTests {
    private static let awkward = "two words\r\nSET injected 1\r\n\u{0}after NUL\t\"quoted\" é 🚀"

    @Test("keys and values with spaces, CRLF, NUL and non-ASCII round-trip byte for byte")
    func binarySafe() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration())
        let key = "key with spaces\n\u{0}"
        #expect(try connection.command(["SET", key, Self.awkward]) == .status("OK"))
        #expect(try connection.command(["GET", key]) == .string(Self.awkward))
        #expect(try connection.command(["STRLEN", key]) == .integer(Self.awkward.utf8.count))
        // The CRLF inside the value must not have become a command of its own.
        #expect(try connection.command(["EXISTS", "injected"]) == .integer(0))
        #expect(try connection.command(["SET", "empty", ""]) == .status("OK"))
        #expect(try connection.command(["GET", "empty"]) == .string(""))
    }

    @Test("integers, nil, arrays (nested, with nils) and status replies")
    func replyTypes() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration())
        #expect(try connection.command(["INCRBY", "n", "-5"]) == .integer(-5))
        #expect(try connection.command(["INCRBY", "n", "9223372036854775806"]) == .integer(9_223_372_036_854_775_801))
        #expect(try connection.command(["GET", "missing"]) == .nil)
        #expect(try connection.command(["RPUSH", "list", "a", "", "c"]) == .integer(3))
        #expect(try connection.command(["LRANGE", "list", "0", "-1"]) == .array([.string("a"), .string(""), .string("c")]))
        #expect(try connection.command(["LRANGE", "none", "0", "-1"]) == .array([]))
        #expect(try connection.command(["MGET", "list", "missing", "n"]) == .array([.nil, .nil, .string("9223372036854775801")]))
        let nested = try connection.command(["EVAL", "return {1, {'two', {3}}, 'x'}", "0"])
        #expect(nested == .array([.integer(1), .array([.string("two"), .array([.integer(3)])]), .string("x")]))
        #expect(try connection.command(["PING"]) == .status("PONG"))
    }

    @Test("error replies come back as .error and leave the connection usable")
    func errorReplies() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration())
        _ = try connection.command(["SET", "text", "abc"])
        let reply = try connection.command(["INCR", "text"])
        guard case .error(let message) = reply else {
            Issue.record("expected an error reply, got \(reply)")
            return
        }
        #expect(message.hasPrefix("ERR value is not an integer"))
        guard case .error(let unknown) = try connection.command(["NO-SUCH-COMMAND", "x"]) else {
            Issue.record("expected an error reply")
            return
        }
        #expect(unknown.contains("unknown command"))
        #expect(!connection.isBroken)
        #expect(try connection.command(["GET", "text"]) == .string("abc"))
    }

    @Test("an empty command is refused before anything is sent")
    func emptyCommand() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration())
        #expect(throws: RedisError.invalidCommand) { try connection.command([]) }
        #expect(throws: RedisError.invalidCommand) { try connection.pipeline([["PING"], []]) }
        #expect(try connection.command(["PING"]) == .status("PONG"))
    }

    @Test("a pipeline answers in order, errors in place, and the connection stays in step")
    func pipelineOrder() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration())
        let replies = try connection.pipeline([
            ["SET", "a", "1"], ["INCR", "a"], ["HSET", "a", "f", "v"], ["GET", "a"], ["GET", "missing"], ["INCRBY", "a", "10"],
        ])
        #expect(replies.count == 6)
        #expect(replies[0] == .status("OK"))
        #expect(replies[1] == .integer(2))
        #expect(replies[2].string == nil && replies[2] != .nil)
        #expect(replies[3] == .string("2"))
        #expect(replies[4] == .nil)
        #expect(replies[5] == .integer(12))
        let counts = try connection.pipeline((1...1000).map { _ in ["INCR", "counter"] })
        #expect(counts == (1...1000).map { .integer($0) })
        #expect(try connection.command(["GET", "a"]) == .string("12"))
    }

    @Test("a reply slower than the command timeout throws timeout and breaks the connection")
    func timeout() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration(commandTimeout: .milliseconds(200)))
        #expect(throws: RedisError.timeout) { try connection.command(["DEBUG", "SLEEP", "1"]) }
        #expect(connection.isBroken)
        #expect(!connection.isReusable)
    }

    @Test("an idle connection whose server went away is not reusable")
    func deadIdleConnection() throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let connection = try RedisConnection(configuration: try server.configuration())
        #expect(try connection.command(["PING"]) == .status("PONG"))
        #expect(connection.isReusable)
        server.stop()
        // The kernel closes the killed server's sockets; the FIN arrives shortly after.
        let deadline = ContinuousClock.now + .seconds(5)
        while connection.isReusable, ContinuousClock.now < deadline {}
        #expect(!connection.isReusable)
    }

    @Test("a server that never accepts or answers gives timeouts, never a hang")
    func silentServer() throws {
        let listener = try RedisTestServer.silentListener()
        defer { close(listener.descriptor) }
        let configuration = RedisConfiguration(
            port: listener.port, connectTimeout: .milliseconds(200), commandTimeout: .milliseconds(200)
        )
        // The first connections may land in the backlog and wait for a reply; later ones
        // cannot even connect. Either way the wait ends with a timeout.
        var connections: [RedisConnection] = []
        for _ in 0..<4 {
            #expect(throws: RedisError.timeout) {
                let connection = try RedisConnection(configuration: configuration)
                connections.append(connection)
                _ = try connection.command(["PING"])
            }
        }
    }

    @Test("connecting to a port nobody listens on throws connectionFailed")
    func refused() throws {
        let port = try RedisTestServer.freePort()
        #expect(throws: RedisError.connectionFailed) {
            try RedisConnection(configuration: RedisConfiguration(host: "127.0.0.1", port: port))
        }
    }
}
