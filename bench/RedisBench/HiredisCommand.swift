import CHiredis
import NIOCore
import Pools

/// hiredis's RESP formatter and reply objects, for ``NIORedisConnection``.
enum HiredisCommand {
    /// The RESP bytes of a command, as `redisFormatCommandArgv` writes them (binary-safe:
    /// lengths are explicit).
    static func format(_ arguments: [String], allocator: ByteBufferAllocator) throws -> ByteBuffer {
        guard !arguments.isEmpty, arguments.count <= Int(Int32.max) else {
            throw NIORedisError("a command needs between 1 and Int32.max words")
        }
        var target: UnsafeMutablePointer<CChar>?
        let length = HiredisArguments.withArgv(arguments) { argc, argv, lengths in
            redisFormatCommandArgv(&target, argc, argv, lengths)
        }
        guard length >= 0, let target else { throw NIORedisError("hiredis could not format the command") }
        defer { redisFreeCommand(target) }
        var formatted = allocator.buffer(capacity: Int(length))
        formatted.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
        return formatted
    }
}
