import Testing

@testable import Pools

@Suite("RedisReply")
struct RedisReplyTests {
    @Test("accessors read the matching case and nothing else")
    func accessors() {
        #expect(RedisReply.string("v").string == "v")
        #expect(RedisReply.status("OK").string == "OK")
        #expect(RedisReply.integer(3).string == nil)
        #expect(RedisReply.integer(-7).integer == -7)
        #expect(RedisReply.string("42").integer == 42)
        #expect(RedisReply.string("4x").integer == nil)
        #expect(RedisReply.status("42").integer == nil)
        #expect(RedisReply.array([.nil]).array == [.nil])
        #expect(RedisReply.string("").array == nil)
        #expect(RedisReply.nil.isNil)
        #expect(!RedisReply.array([]).isNil)
    }

    @Test("checked() turns an error reply into RedisError.errorReply with its message")
    func checked() throws {
        #expect(try RedisReply.status("OK").checked() == .status("OK"))
        #expect(try RedisReply.nil.checked() == .nil)
        #expect {
            try RedisReply.error("ERR wrong number of arguments").checked()
        } throws: { error in
            guard let error = error as? RedisError else { return false }
            return error == .errorReply && error.detail == "ERR wrong number of arguments"
        }
    }

    @Test("errors compare by kind; the description carries the detail, the label only the kind")
    func errorIdentity() {
        let error = RedisError.timeout("run GET: no answer within 0.2 seconds")
        #expect(error == .timeout)
        #expect(error != .connectionFailed)
        #expect(error.label == "timeout")
        #expect(error.description == "RedisError.timeout: run GET: no answer within 0.2 seconds")
        #expect(RedisError.clientShutDown.description == "RedisError.clientShutDown")
    }
}
