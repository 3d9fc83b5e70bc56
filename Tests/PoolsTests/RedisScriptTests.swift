import Testing

@testable import Pools
import RedisTestSupport

@Suite("RedisScript")
struct RedisScriptTests {
    @Test(
        "SHA-1 matches the FIPS 180 test vectors",
        arguments: [
            ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
            ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
        ]
    )
    func vectors(message: String, digest: String) {
        #expect(SHA1.hexDigest(of: Array(message.utf8)) == digest)
    }

    @Test("SHA-1 of a million 'a's")
    func longMessage() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA1.hexDigest(of: message) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test("the digest is the one Redis computes, at every length around the 64-byte block edges")
    func matchesRedis() async throws {
        let server = try RedisTestServer()
        defer { server.stop() }
        let client = RedisClient(configuration: try server.configuration())
        // A Lua comment of exactly `length` bytes compiles to an empty chunk.
        let sources = [""] + [2, 3, 54, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000].map { length in
            "--" + String(repeating: "x", count: length - 2)
        } + ["return 'é — ünïcødé 🚀'"]
        for source in sources {
            let loaded = try await client.command(["SCRIPT", "LOAD", source])
            #expect(loaded == .string(RedisScript(source).sha1), "source of \(source.utf8.count) bytes")
        }
        try await client.shutdown()
    }
}
