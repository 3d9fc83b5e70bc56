/// The fuzzer's bytes, read front to back: a target takes its few choices (flags, a chunk
/// plan) from the head and treats the rest as the payload, so mutations of the head explore
/// the choices and mutations of the payload explore the parser.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    private var cursor = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
    }

    /// The next byte, or 0 once the input is used up.
    public mutating func byte() -> UInt8 {
        guard cursor < bytes.count else { return 0 }
        defer { cursor += 1 }
        return bytes[cursor]
    }

    /// A chunk plan: one byte `n`, then `n % 8` chunk sizes of one byte each.
    public mutating func chunkPlan() -> ChunkPlan {
        let count = Int(byte() % 8)
        return ChunkPlan(sizes: (0..<count).map { _ in Int(byte()) })
    }

    /// Everything not yet taken.
    public var rest: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[min(cursor, bytes.count)...])
    }
}

/// Where to cut a payload into the chunks a network read might deliver.
public struct ChunkPlan: Sendable {
    /// Sizes used in turn, 0 meaning an empty chunk; no sizes means one byte at a time.
    public var sizes: [Int]

    public init(sizes: [Int]) {
        self.sizes = sizes
    }

    /// The chunks' ranges, in order, covering `0..<count`.
    public func chunks(count: Int) -> [Range<Int>] {
        var sizes = sizes.isEmpty ? [1] : sizes
        // A plan of empty chunks only must still get through the payload.
        if sizes.allSatisfy({ $0 == 0 }) { sizes.append(1) }
        var ranges: [Range<Int>] = []
        var start = 0
        var turn = 0
        while start < count {
            let end = min(count, start + sizes[turn % sizes.count])
            ranges.append(start..<end)
            start = end
            turn += 1
        }
        return ranges
    }
}
