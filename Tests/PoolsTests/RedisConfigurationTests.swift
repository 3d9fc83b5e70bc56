import Testing

@testable import Pools

@Suite("RedisConfiguration")
struct RedisConfigurationTests {
    @Test("a bare host gets port 6379, database 0 and no credentials")
    func defaults() throws {
        let configuration = try RedisConfiguration(url: "redis://cache.internal")
        #expect(configuration.host == "cache.internal")
        #expect(configuration.port == 6379)
        #expect(configuration.database == 0)
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
        #expect(try RedisConfiguration(url: "redis://cache.internal/").database == 0)
    }

    @Test("reads user, password, host, port and database")
    func everyPart() throws {
        let configuration = try RedisConfiguration(url: "redis://proxy:s3cret@10.0.0.7:6380/2")
        #expect(configuration.username == "proxy")
        #expect(configuration.password == "s3cret")
        #expect(configuration.host == "10.0.0.7")
        #expect(configuration.port == 6380)
        #expect(configuration.database == 2)
    }

    @Test("user info without a colon is a password, as with redis-cli -u; an empty user is none")
    func passwordOnly() throws {
        let bare = try RedisConfiguration(url: "redis://s3cret@localhost:6379")
        #expect(bare.username == nil)
        #expect(bare.password == "s3cret")
        let emptyUser = try RedisConfiguration(url: "redis://:s3cret@localhost")
        #expect(emptyUser.username == nil)
        #expect(emptyUser.password == "s3cret")
    }

    @Test("percent escapes in user and password are decoded; '@' in the password is allowed")
    func percentDecoding() throws {
        let configuration = try RedisConfiguration(url: "redis://ops%2Dteam:p%40ss%3Aw0rd%2F@h:1/0")
        #expect(configuration.username == "ops-team")
        #expect(configuration.password == "p@ss:w0rd/")
        #expect(try RedisConfiguration(url: "redis://:a@b@h").password == "a@b")
    }

    @Test("IPv6 hosts are bracketed in the URL, bare in the configuration")
    func ipv6() throws {
        let configuration = try RedisConfiguration(url: "redis://[::1]:6390/1")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 6390)
        #expect(try RedisConfiguration(url: "redis://[fe80::1]").port == 6379)
        #expect(configuration.description == "redis://[::1]:6390/1")
    }

    @Test("the scheme is case-insensitive; timeouts and pool size come from the arguments")
    func options() throws {
        let configuration = try RedisConfiguration(
            url: "REDIS://h", connectTimeout: .milliseconds(300), commandTimeout: .milliseconds(50), poolSize: 0
        )
        #expect(configuration.connectTimeout == .milliseconds(300))
        #expect(configuration.commandTimeout == .milliseconds(50))
        #expect(configuration.poolSize == 1)
    }

    @Test(
        "errors name what is wrong",
        arguments: [
            ("localhost:6379", "missing scheme"),
            ("http://localhost", "scheme 'http' is not redis"),
            ("rediss://localhost", "TLS"),
            ("redis://", "host is missing"),
            ("redis://:6379", "host is missing"),
            ("redis://h:port", "port 'port' is not a number"),
            ("redis://h:", "port '' is not a number"),
            ("redis://h:-1", "port '-1' is not a number"),
            ("redis://h:70000", "port 70000 is not between 1 and 65535"),
            ("redis://h:0", "port 0 is not between 1 and 65535"),
            ("redis://h/db1", "database 'db1' is not a non-negative number"),
            ("redis://h/1/2", "database '1/2' is not a non-negative number"),
            ("redis://h/-1", "database '-1' is not a non-negative number"),
            ("redis://h?timeout=1", "query parameters"),
            ("redis://[::1", "closing ']'"),
            ("redis://[::1]x", "unexpected text after the IPv6 host"),
            ("redis://:bad%zz@h", "password has a malformed percent escape"),
            ("redis://u%4:p@h", "user has a malformed percent escape"),
        ]
    )
    func invalid(url: String, reason: String) {
        #expect {
            try RedisConfiguration(url: url)
        } throws: { error in
            guard let error = error as? RedisError, error == .invalidURL else { return false }
            return error.detail?.contains(reason) == true
        }
    }

    @Test("errors and descriptions never show the password")
    func passwordStaysSecret() throws {
        let configuration = try RedisConfiguration(url: "redis://proxy:hunter2@h:1/3")
        #expect(configuration.description == "redis://proxy:***@h:1/3")
        do {
            _ = try RedisConfiguration(url: "redis://proxy:hunter2@h:notaport")
            Issue.record("expected an error")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }
}
