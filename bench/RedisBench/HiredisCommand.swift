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
        var bytes: [UInt8] = []
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            bytes.append(contentsOf: argument.utf8)
            lengths.append(argument.utf8.count)
        }
        // A trailing byte keeps the base address valid even when every argument is empty.
        bytes.append(0)
        return try bytes.withUnsafeBufferPointer { buffer in
            try buffer.withMemoryRebound(to: CChar.self) { characters in
                var pointers: [UnsafePointer<CChar>?] = []
                pointers.reserveCapacity(lengths.count)
                var offset = 0
                for length in lengths {
                    pointers.append(characters.baseAddress! + offset)
                    offset += length
                }
                var target: UnsafeMutablePointer<CChar>?
                let length = pointers.withUnsafeMutableBufferPointer { argv in
                    redisFormatCommandArgv(&target, Int32(lengths.count), argv.baseAddress!, lengths)
                }
                guard length >= 0, let target else { throw NIORedisError("hiredis could not format the command") }
                defer { redisFreeCommand(target) }
                var formatted = allocator.buffer(capacity: Int(length))
                formatted.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
                return formatted
            }
        }
    }
}

extension RedisReply {
    /// Deep-copies a reply from hiredis's reader; the caller still frees `reply`.
    init(hiredis reply: UnsafePointer<redisReply>) {
        switch reply.pointee.type {
        case REDIS_REPLY_STRING, REDIS_REPLY_VERB, REDIS_REPLY_BIGNUM, REDIS_REPLY_DOUBLE:
            self = .string(Self.text(of: reply))
        case REDIS_REPLY_STATUS:
            self = .status(Self.text(of: reply))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(of: reply))
        case REDIS_REPLY_INTEGER, REDIS_REPLY_BOOL:
            self = .integer(Int(reply.pointee.integer))
        case REDIS_REPLY_ARRAY, REDIS_REPLY_MAP, REDIS_REPLY_SET, REDIS_REPLY_PUSH, REDIS_REPLY_ATTR:
            let count = Int(reply.pointee.elements)
            guard count > 0, let elements = reply.pointee.element else {
                self = .array([])
                return
            }
            self = .array((0..<count).map { index in
                elements[index].map { RedisReply(hiredis: $0) } ?? .nil
            })
        default:
            self = .nil
        }
    }

    private static func text(of reply: UnsafePointer<redisReply>) -> String {
        guard let bytes = reply.pointee.str, reply.pointee.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: Int(reply.pointee.len)), as: UTF8.self)
    }
}
