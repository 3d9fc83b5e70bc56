/// Stops the run when a property that must hold for every input does not: libFuzzer
/// records the input as a crash, like any other trap.
public func invariant(
    _ condition: @autoclosure () -> Bool,
    _ message: @autoclosure () -> String,
    file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() {
        fatalError("invariant failed: \(message())", file: file, line: line)
    }
}

/// Bytes as text for a failure message, control characters escaped, cut when long.
public func describe(_ bytes: some Collection<UInt8>, limit: Int = 600) -> String {
    var text = ""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 0x0A: text += "\\n"
        case 0x0D: text += "\\r"
        case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
        default: text += (byte < 0x10 ? "\\x0" : "\\x") + String(byte, radix: 16)
        }
    }
    return bytes.count > limit ? text + "… (\(bytes.count) bytes)" : text
}
