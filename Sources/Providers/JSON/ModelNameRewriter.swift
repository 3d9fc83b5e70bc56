import NIOCore

/// Rewrites the top-level `"model"` string of a JSON answer that is relayed as it
/// arrives, whatever the chunk boundaries: the answer names the public model the tenant
/// asked for, not the upstream model behind it. A value-type state machine: feed bytes,
/// get bytes.
///
/// Every byte is looked at once and nothing is decoded; a chunk without the member goes
/// through as it came (no copy). Only a string value is replaced; `"model": null` and
/// members of nested objects stay as they are.
public struct ModelNameRewriter: Sendable {
    private enum State: Sendable {
        /// Before the document's opening brace.
        case start
        /// Inside the top-level object, between members: a key may begin.
        case expectingKey
        /// Inside a top-level key; `matched` says whether its bytes so far are a prefix of `model`.
        case key(length: Int, matched: Bool, escaped: Bool)
        /// After a top-level key, before its colon.
        case afterKey(isModel: Bool)
        /// After the colon, before the value's first byte.
        case beforeValue(isModel: Bool)
        /// Skipping the old `model` string, already replaced.
        case replacing(escaped: Bool)
        /// Inside a value nested `depth` levels below the top-level object (or a scalar).
        case value(depth: Int, inString: Bool, escaped: Bool)
        /// After the document's closing brace, or on text that is no object: pass through.
        case done
    }

    private static let key = Array("model".utf8)

    private var state = State.start
    private let replacement: [UInt8]

    /// - Parameter model: the public model name.
    public init(model: String) {
        replacement = .jsonString(model)
    }

    /// The bytes to relay for the next chunk of the answer.
    public mutating func rewrite(_ chunk: ByteBuffer) -> ByteBuffer {
        if case .done = state { return chunk }
        var output: ByteBuffer?
        var copiedUpTo = 0
        // The old value began in an earlier chunk: its rest is skipped here too.
        if case .replacing = state { output = ByteBuffer() }
        chunk.withUnsafeReadableBytes { raw in
            var index = 0
            while index < raw.count {
                let byte = raw[index]
                switch state {
                case .start:
                    if byte == UInt8(ascii: "{") {
                        state = .expectingKey
                    } else if !Self.isWhitespace(byte) {
                        state = .done
                        return
                    }
                case .expectingKey:
                    if byte == UInt8(ascii: "\"") {
                        state = .key(length: 0, matched: true, escaped: false)
                    } else if byte == UInt8(ascii: "}") {
                        state = .done
                        return
                    }
                case .key(let length, let matched, let escaped):
                    if escaped {
                        // An escaped key is never taken for `model`.
                        state = .key(length: length + 1, matched: false, escaped: false)
                    } else if byte == UInt8(ascii: "\\") {
                        state = .key(length: length + 1, matched: false, escaped: true)
                    } else if byte == UInt8(ascii: "\"") {
                        state = .afterKey(isModel: matched && length == Self.key.count)
                    } else {
                        let stillMatched = matched && length < Self.key.count && Self.key[length] == byte
                        state = .key(length: length + 1, matched: stillMatched, escaped: false)
                    }
                case .afterKey(let isModel):
                    if byte == UInt8(ascii: ":") { state = .beforeValue(isModel: isModel) }
                case .beforeValue(let isModel):
                    if Self.isWhitespace(byte) { break }
                    if isModel, byte == UInt8(ascii: "\"") {
                        // Copy what precedes the old value, write the new one, skip the old.
                        var buffer = output ?? ByteBuffer()
                        if output == nil { buffer.reserveCapacity(raw.count + replacement.count) }
                        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[copiedUpTo..<index]))
                        buffer.writeBytes(replacement)
                        output = buffer
                        copiedUpTo = index + 1
                        state = .replacing(escaped: false)
                    } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                        state = .value(depth: 1, inString: false, escaped: false)
                    } else if byte == UInt8(ascii: "\"") {
                        state = .value(depth: 0, inString: true, escaped: false)
                    } else {
                        state = .value(depth: 0, inString: false, escaped: false)
                    }
                case .replacing(let escaped):
                    if escaped {
                        state = .replacing(escaped: false)
                    } else if byte == UInt8(ascii: "\\") {
                        state = .replacing(escaped: true)
                    } else if byte == UInt8(ascii: "\"") {
                        state = .value(depth: 0, inString: false, escaped: false)
                        copiedUpTo = index + 1
                        index += 1
                        continue
                    }
                    copiedUpTo = index + 1
                case .value(let depth, let inString, let escaped):
                    if inString {
                        if escaped {
                            state = .value(depth: depth, inString: true, escaped: false)
                        } else if byte == UInt8(ascii: "\\") {
                            state = .value(depth: depth, inString: true, escaped: true)
                        } else if byte == UInt8(ascii: "\"") {
                            state = .value(depth: depth, inString: false, escaped: false)
                        }
                    } else if byte == UInt8(ascii: "\"") {
                        state = .value(depth: depth, inString: true, escaped: false)
                    } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                        state = .value(depth: depth + 1, inString: false, escaped: false)
                    } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                        if depth == 0 {
                            // The top-level object closes after a scalar value.
                            state = .done
                            return
                        }
                        state = .value(depth: depth - 1, inString: false, escaped: false)
                    } else if byte == UInt8(ascii: ","), depth == 0 {
                        state = .expectingKey
                    }
                case .done:
                    return
                }
                index += 1
            }
        }
        guard var output else { return chunk }
        if copiedUpTo < chunk.readableBytes {
            output.writeImmutableBuffer(chunk.getSlice(at: chunk.readerIndex + copiedUpTo, length: chunk.readableBytes - copiedUpTo)!)
        }
        return output
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
