/// Random identifiers and secrets in base62.
public enum Identifier {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// `prefix_` followed by `length` random base62 characters, e.g. `ten_4fQ2…`.
    public static func make(prefix: String, length: Int = 20) -> String {
        prefix + "_" + randomBase62(length: length)
    }

    /// Random base62 text from the system's cryptographic generator, without modulo bias.
    public static func randomBase62(length: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var characters: [UInt8] = []
        characters.reserveCapacity(length)
        while characters.count < length {
            let byte = UInt8.random(in: 0...255, using: &generator)
            // 248 = 4 * 62: rejecting the top 8 values keeps every character equally likely.
            if byte < 248 { characters.append(alphabet[Int(byte % 62)]) }
        }
        return String(decoding: characters, as: UTF8.self)
    }
}
