/// Commands as hiredis takes them, shared by the Redis client and the benchmarks'
/// non-blocking prototype.
package enum HiredisArguments {
    /// Lays `arguments` out as the `argc`/`argv`/`argvlen` triple hiredis takes. Lengths
    /// are explicit, so arguments are binary-safe; the pointers live only during `body`.
    package static func withArgv<Result>(
        _ arguments: [String],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        var bytes: [UInt8] = []
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            let utf8 = argument.utf8
            bytes.append(contentsOf: utf8)
            lengths.append(utf8.count)
        }
        // A trailing byte keeps the base address valid even when every argument is empty.
        bytes.append(0)
        return bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { characters in
                var pointers: [UnsafePointer<CChar>?] = []
                pointers.reserveCapacity(lengths.count)
                var offset = 0
                for length in lengths {
                    pointers.append(characters.baseAddress! + offset)
                    offset += length
                }
                return pointers.withUnsafeMutableBufferPointer { argv in
                    lengths.withUnsafeBufferPointer { argvLengths in
                        body(Int32(arguments.count), argv.baseAddress!, argvLengths.baseAddress!)
                    }
                }
            }
        }
    }
}
