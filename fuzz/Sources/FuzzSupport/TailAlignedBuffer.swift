import NIOCore

/// A buffer whose readable bytes are `bytes` and end exactly where its storage ends.
///
/// `ByteBuffer` rounds its storage up to a power of two, so a read a few bytes past the
/// readable ones would land in spare capacity that AddressSanitizer cannot see. Here the
/// spare capacity lies before the reader index instead, filled with a decoy request, so a
/// read past the end hits the allocation's redzone and code that ignores the reader index
/// reads the decoy.
public func tailAlignedBuffer(_ bytes: UnsafeRawBufferPointer) -> ByteBuffer {
    guard !bytes.isEmpty else { return ByteBuffer() }
    var capacity = 1
    while capacity < bytes.count + 16 { capacity <<= 1 }
    var buffer = ByteBufferAllocator().buffer(capacity: capacity)
    let decoyCount = capacity - bytes.count
    var written = 0
    while written < decoyCount {
        let count = min(decoyCount - written, decoy.count)
        buffer.writeBytes(decoy[..<count])
        written += count
    }
    buffer.writeBytes(bytes)
    buffer.moveReaderIndex(forwardBy: decoyCount)
    invariant(buffer.capacity == capacity, "the tail-aligned buffer grew (harness bug)")
    return buffer
}

public func tailAlignedBuffer(_ bytes: some Collection<UInt8>) -> ByteBuffer {
    Array(bytes).withUnsafeBytes { tailAlignedBuffer($0) }
}

private let decoy: [UInt8] = {
    let text = Array(#"{"model":"decoy","stream":true}data: {"decoy":1}\#n\#n"#.utf8)
    return Array((0..<(4096 / text.count + 1)).map { _ in text }.joined())
}()

extension ByteBuffer {
    /// The readable bytes, copied.
    public var readableArray: [UInt8] { Array(readableBytesView) }
}
