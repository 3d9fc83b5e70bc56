import Testing

@testable import Pools
import RedisTestSupport

/// The public client against a real redis-server: thread pool, connection pool, scripts,
/// credentials, reconnecting and timeouts.
@Suite("RedisClient")
struct RedisClientTests {
    @Test("commands round-trip binary-safe values, integers, arrays and nil")
    func commands() async throws {
        try await withRedis { _, client in
            let value = "line one\r\nline two\u{0}NUL and spaces é"
            #expect(try await client.command(["SET", "k", value]) == .status("OK"))
            #expect(try await client.command(["GET", "k"]) == .string(value))
            #expect(try await client.command(["GET", "nothing"]) == .nil)
            #expect(try await client.command(["INCRBY", "n", "41"]) == .integer(41))
            #expect(try await client.command(["INCR", "n"]).integer == 42)
            _ = try await client.command(["RPUSH", "l", "x", "y"])
            #expect(try await client.command(["LRANGE", "l", "0", "-1"]) == .array([.string("x"), .string("y")]))
        }
    }

    @Test("an error reply is .error; checked() throws it as RedisError.errorReply")
    func errorReply() async throws {
        try await withRedis { _, client in
            _ = try await client.command(["SET", "text", "abc"])
            let reply = try await client.command(["INCR", "text"])
            #expect(reply.string == nil)
            await #expect(throws: RedisError.errorReply) { try await client.command(["INCR", "text"]).checked() }
            do {
                _ = try reply.checked()
                Issue.record("checked() should throw")
            } catch let error as RedisError {
                #expect(error.detail?.hasPrefix("ERR value is not an integer") == true)
            }
            // The connection that carried the error is still good.
            #expect(try await client.command(["GET", "text"]) == .string("abc"))
            await #expect(throws: RedisError.invalidCommand) { try await client.command([]) }
        }
    }

    @Test("pipelined replies come back in the order of the commands")
    func pipeline() async throws {
        try await withRedis { _, client in
            let replies = try await client.pipeline([
                ["SET", "p", "1"], ["INCR", "p"], ["LPUSH", "p", "x"], ["INCRBY", "p", "5"], ["GET", "p"], ["DEL", "p"],
            ])
            #expect(replies.count == 6)
            #expect(replies[0] == .status("OK"))
            #expect(replies[1] == .integer(2))
            #expect(replies[2].string == nil && replies[2].integer == nil)
            #expect(replies[3] == .integer(7))
            #expect(replies[4] == .string("7"))
            #expect(replies[5] == .integer(1))
            #expect(try await client.pipeline([]) == [])
            let keys = (0..<200).map { "key-\($0)" }
            _ = try await client.pipeline(keys.map { ["SET", $0, "value of \($0)"] })
            let values = try await client.pipeline(keys.map { ["GET", $0] })
            #expect(values == keys.map { .string("value of \($0)") })
        }
    }

    @Test("EVALSHA loads the script on NOSCRIPT and runs it, again after SCRIPT FLUSH")
    func evalSHA() async throws {
        try await withRedis { _, client in
            let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('INCRBY', KEYS[1], ARGV[2])}")
            _ = try await client.command(["SCRIPT", "FLUSH"])
            #expect(try await client.command(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(0)]))

            let first = try await client.evalSHA(script: script, keys: ["{tenant-1}:rpm"], arguments: ["a b", "5"])
            #expect(first == .array([.string("{tenant-1}:rpm"), .string("a b"), .integer(5)]))
            #expect(try await client.command(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))

            let cached = try await client.evalSHA(script: script, keys: ["{tenant-1}:rpm"], arguments: ["", "1"])
            #expect(cached.array?.last == .integer(6))

            _ = try await client.command(["SCRIPT", "FLUSH"])
            let reloaded = try await client.evalSHA(script: script, keys: ["{tenant-1}:rpm"], arguments: ["", "1"])
            #expect(reloaded.array?.last == .integer(7))
        }
    }

    @Test("a script that fails, or does not compile, answers .error rather than throwing")
    func scriptErrors() async throws {
        try await withRedis { _, client in
            _ = try await client.command(["SET", "text", "abc"])
            let failing = RedisScript("return redis.call('INCR', KEYS[1])")
            let failed = try await client.evalSHA(script: failing, keys: ["text"], arguments: [])
            guard case .error(let message) = failed else {
                Issue.record("expected an error reply, got \(failed)")
                return
            }
            #expect(message.contains("not an integer"))

            let broken = RedisScript("return (")
            guard case .error(let compile) = try await client.evalSHA(script: broken, keys: [], arguments: []) else {
                Issue.record("expected an error reply")
                return
            }
            #expect(!compile.hasPrefix("NOSCRIPT"))
        }
    }

    @Test("AUTH and SELECT from the URL; a wrong password or database throws")
    func credentialsAndDatabase() async throws {
        let server = try RedisTestServer(password: "p@ss:w0rd/ok")
        defer { server.stop() }
        let database3 = RedisClient(configuration: try server.configuration(database: 3))
        let database0 = RedisClient(configuration: try RedisConfiguration(url: "redis://default:p%40ss%3Aw0rd%2Fok@127.0.0.1:\(server.port)"))
        let anonymous = RedisClient(configuration: RedisConfiguration(port: server.port))
        let wrongPassword = RedisClient(configuration: try RedisConfiguration(url: "redis://:nope@127.0.0.1:\(server.port)"))
        let noSuchDatabase = RedisClient(configuration: try server.configuration(database: 99))

        #expect(try await database3.command(["SET", "where", "three"]) == .status("OK"))
        #expect(try await database3.command(["GET", "where"]) == .string("three"))
        #expect(try await database0.command(["GET", "where"]) == .nil)
        guard case .error(let message) = try await anonymous.command(["GET", "where"]) else {
            Issue.record("expected NOAUTH")
            return
        }
        #expect(message.hasPrefix("NOAUTH"))
        await #expect(throws: RedisError.authenticationFailed) { try await wrongPassword.command(["PING"]) }
        await #expect(throws: RedisError.databaseSelectionFailed) { try await noSuchDatabase.command(["PING"]) }

        for client in [database3, database0, anonymous, wrongPassword, noSuchDatabase] {
            try await client.shutdown()
        }
    }

    @Test("after Redis restarts, a command fails with RedisError and the next one reconnects")
    func reconnect() async throws {
        try await withRedis(poolSize: 3) { server, client in
            // Open every pooled connection, so that all of them go stale at once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<30 {
                    group.addTask { _ = try await client.command(["SET", "k\(index)", "v"]) }
                }
                try await group.waitForAll()
            }
            server.stop()
            await #expect(throws: RedisError.self) { try await client.command(["PING"]) }

            try server.start()
            #expect(try await client.command(["PING"]) == .status("PONG"))
            // No data survived (no persistence), and every connection works again.
            for index in 0..<10 {
                #expect(try await client.command(["GET", "k\(index)"]) == .nil)
            }
        }
    }

    @Test("a command slower than the timeout throws timeout instead of waiting; the client recovers")
    func timeout() async throws {
        try await withRedis(commandTimeout: .milliseconds(200)) { _, client in
            await #expect(throws: RedisError.timeout) { try await client.command(["DEBUG", "SLEEP", "1"]) }
            // Redis is still asleep for a while; once awake, a fresh connection answers.
            let deadline = ContinuousClock.now + .seconds(10)
            var answer: RedisReply?
            while answer == nil, ContinuousClock.now < deadline {
                answer = try? await client.command(["PING"])
            }
            #expect(answer == .status("PONG"))
        }
    }

    @Test("hundreds of concurrent commands from tasks each get their own reply")
    func concurrency() async throws {
        try await withRedis(poolSize: 4) { _, client in
            let replies = try await withThrowingTaskGroup(of: (Int, RedisReply, RedisReply).self) { group in
                for index in 0..<400 {
                    group.addTask {
                        let value = "value-\(index)"
                        _ = try await client.command(["SET", "c\(index)", value])
                        let got = try await client.command(["GET", "c\(index)"])
                        let count = try await client.command(["INCR", "total"])
                        return (index, got, count)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies.count == 400)
            for (index, got, _) in replies {
                #expect(got == .string("value-\(index)"))
            }
            #expect(Set(replies.compactMap { $0.2.integer }) == Set(1...400))
            #expect(try await client.command(["GET", "total"]) == .string("400"))
        }
    }

    @Test("after shutdown, commands throw clientShutDown")
    func shutdown() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        #expect(try await client.command(["PING"]) == .status("PONG"))
        try await client.shutdown()
        await #expect(throws: RedisError.clientShutDown) { try await client.command(["PING"]) }
    }

    @Test("a client nobody shuts down is released without trouble")
    func releasedWithoutShutdown() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        var client: RedisClient? = RedisClient(configuration: try server.configuration())
        #expect(try await client?.command(["PING"]) == .status("PONG"))
        client = nil
        #expect(client == nil)
    }
}
