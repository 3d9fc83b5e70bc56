import Foundation
import NIOCore

/// Takes credentials out of upstream text before a tenant sees it. Providers quote what
/// they were sent in their error messages ("Incorrect API key provided: sk-proj-…abcd"),
/// echo headers back, or put keys in URLs; a tenant must never learn a provider key,
/// whole or in part, from an error Switchyard relays.
///
/// Redacted, each replaced by `[redacted]`:
/// - any run of 8 or more bytes that appears in one of the known secrets (the key the
///   request was sent with), wherever it is, and a shorter secret wherever it appears
///   whole;
/// - the value after `Bearer` or `Basic`, and after a credential-like name (`api-key`,
///   `x-api-key`, `x-goog-api-key`, `authorization`, `api_key`, `apikey`, `key=` in a
///   URL) followed by `:` or `=`, when it looks like a credential (16 or more token
///   bytes, or 8 or more with a digit or symbol: not "basic authentication");
/// - tokens shaped like provider keys: `sk-…` and Google's `AIza…`.
///
/// And what stands behind the tenant's private endpoint is taken out with them: the
/// upstream model's name becomes the public model's, provider names become "the
/// provider", and links into a provider's documentation or console are removed.
public struct SecretRedaction: Sendable {
    public static let replacement = "[redacted]"
    /// Shorter runs are too common to be telling (and a key's last four are shown anyway).
    public static let shortestFragment = 8

    private let secrets: [[UInt8]]
    /// Secrets too short to match in pieces (a weak engine key): matched whole.
    private let shortSecrets: [[UInt8]]

    /// Upstream names and what the tenant knows them as, longest first.
    private let renames: [(from: String, to: String)]

    /// - Parameters:
    ///   - secrets: the credentials the request was sent with.
    ///   - renaming: upstream model names and the public name each stands for.
    public init(secrets: [String], renaming: [String: String] = [:]) {
        renames = renaming.filter { !$0.key.isEmpty && $0.key != $0.value }
            .sorted { $0.key.utf8.count > $1.key.utf8.count }
            .map { (from: $0.key, to: $0.value) }
        let all = secrets.map { Array($0.utf8) }
        let secrets = all.filter { $0.count >= Self.shortestFragment }
        self.secrets = secrets
        self.shortSecrets = all.filter { (4..<Self.shortestFragment).contains($0.count) }
    }

    /// Redacts only credential-shaped values, knowing no secret.
    public static let credentialShapes = SecretRedaction(secrets: [])

    // MARK: Redacting

    public func redact(_ text: String) -> String {
        renamed(Self.withoutProviderNames(redactedSecrets(text)))
    }

    private func redactedSecrets(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var redacted = [Bool](repeating: false, count: bytes.count)
        var any = markSecretFragments(bytes, into: &redacted)
        any = markCredentialValues(bytes, into: &redacted) || any
        guard any else { return text }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if redacted[index] {
                output.append(contentsOf: Self.replacement.utf8)
                while index < bytes.count, redacted[index] { index += 1 }
            } else {
                output.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    // MARK: What stands behind the endpoint

    /// Each upstream name, where it stands as a name of its own (not inside a longer
    /// one: `gpt-4o` in `gpt-4o-mini` stays), becomes the public one.
    private func renamed(_ text: String) -> String {
        var text = text
        for (from, to) in renames where text.contains(from) {
            var result = ""
            var rest = text[...]
            while let range = rest.range(of: from) {
                let before = range.lowerBound == text.startIndex ? nil : text[text.index(before: range.lowerBound)]
                let after = range.upperBound == text.endIndex ? nil : text[range.upperBound]
                let next = range.upperBound == text.endIndex || text.index(after: range.upperBound) == text.endIndex
                    ? nil : text[text.index(after: range.upperBound)]
                let standsAlone = !Self.continuesName(before, next: nil) && !Self.continuesName(after, next: next)
                result += rest[..<range.lowerBound]
                result += standsAlone ? to : from
                rest = rest[range.upperBound...]
            }
            text = result + rest
        }
        return text
    }

    /// Whether a character next to a name makes it part of a longer name: letters,
    /// digits, `-` and `_`, and `.`, `:` or `@` followed by a letter or digit.
    private static func continuesName(_ character: Character?, next: Character?) -> Bool {
        guard let character else { return false }
        if character.isLetter || character.isNumber || character == "-" || character == "_" { return true }
        if character == "." || character == ":" || character == "@" {
            guard let next else { return false }
            return next.isLetter || next.isNumber
        }
        return false
    }

    /// Provider names as upstream messages write them, longest first so "Azure OpenAI"
    /// goes before "OpenAI".
    static let providerNames = [
        "Azure OpenAI", "Google Cloud", "Vertex AI", "Generative Language API", "Google AI Studio", "OpenAI",
        "Anthropic", "Google", "Azure", "Microsoft",
    ]
    /// Hosts whose links an upstream message may carry (documentation, consoles, quotas).
    static let providerHosts = [
        "openai.com", "anthropic.com", "claude.com", "claude.ai", "google.com", "googleapis.com", "google.dev",
        "azure.com", "microsoft.com", "cloud.google", "openai.azure",
    ]
    static let providerWord = "the provider"
    static let removedLink = "[link removed]"

    /// Names and links that would tell a tenant which provider answered.
    static func withoutProviderNames(_ text: String) -> String {
        guard providerNames.contains(where: text.contains) || text.contains("://") else { return text }
        var text = withoutProviderLinks(text)
        for name in providerNames where text.contains(name) {
            // "the Anthropic models", "an OpenAI key": the article is already there.
            for (article, replacement) in [("the ", "the provider"), ("The ", "The provider"), ("an ", "a provider"), ("An ", "A provider"), ("a ", "a provider"), ("A ", "A provider")] {
                text = text.replacingOccurrences(of: article + name, with: replacement)
            }
            text = text.replacingOccurrences(of: name, with: providerWord)
        }
        return text
    }

    /// Each link to a provider's site becomes `removedLink`: from its scheme to the first
    /// character a URL in running text does not hold (whitespace, quotes, brackets), less
    /// a sentence's closing punctuation. What surrounds it stays as it was.
    static func withoutProviderLinks(_ text: String) -> String {
        guard text.contains("://") else { return text }
        var result = ""
        var rest = text[...]
        while let scheme = rest.range(of: "http") {
            var end = scheme.lowerBound
            while end < rest.endIndex, !Self.endsLink(rest[end]) { end = rest.index(after: end) }
            var link = rest[scheme.lowerBound..<end]
            while let last = link.last, ".,;:!?".contains(last) { link = link.dropLast() }
            result += rest[..<scheme.lowerBound]
            let isProviders = link.contains("://") && providerHosts.contains(where: { link.contains($0) })
            result += isProviders ? removedLink : String(link)
            rest = rest[link.endIndex...]
        }
        return result + rest
    }

    private static func endsLink(_ character: Character) -> Bool {
        character.isWhitespace || "\"'<>()[]{}`\\".contains(character)
    }

    /// The error with its message and parameter redacted.
    public func redact(_ error: OpenAIError) -> OpenAIError {
        var error = error
        error.message = redact(error.message)
        error.param = error.param.map(redact)
        return error
    }

    /// Redacts bytes already encoded for the client (an SSE error event, say). The
    /// replacement has no character JSON escapes, so JSON stays JSON.
    public func redact(_ buffer: ByteBuffer) -> ByteBuffer {
        let text = String(buffer: buffer)
        let redacted = redact(text)
        return redacted == text ? buffer : ByteBuffer(string: redacted)
    }

    // MARK: Known secrets

    private func markSecretFragments(_ bytes: [UInt8], into redacted: inout [Bool]) -> Bool {
        var any = false
        for secret in shortSecrets where bytes.count >= secret.count {
            for start in 0...(bytes.count - secret.count) where bytes[start..<(start + secret.count)].elementsEqual(secret) {
                any = Self.mark(start..<(start + secret.count), in: &redacted) || any
            }
        }
        guard !secrets.isEmpty, bytes.count >= Self.shortestFragment else { return any }
        // Every 8-byte window of every secret, packed, for a cheap first test. Built here,
        // not at init: every answer carries a redaction, few ever redact.
        var windows = Set<UInt64>()
        for secret in secrets {
            for start in 0...(secret.count - Self.shortestFragment) {
                windows.insert(Self.pack(secret, at: start))
            }
        }
        var start = 0
        while start <= bytes.count - Self.shortestFragment {
            guard windows.contains(Self.pack(bytes, at: start)) else {
                start += 1
                continue
            }
            // Extend the match as far as some secret still contains it.
            var length = Self.shortestFragment
            while start + length < bytes.count, containsInSomeSecret(bytes[start..<(start + length + 1)]) {
                length += 1
            }
            for index in start..<(start + length) { redacted[index] = true }
            any = true
            start += length
        }
        return any
    }

    private func containsInSomeSecret(_ fragment: ArraySlice<UInt8>) -> Bool {
        secrets.contains { secret in
            guard secret.count >= fragment.count else { return false }
            for offset in 0...(secret.count - fragment.count) where secret[offset..<(offset + fragment.count)].elementsEqual(fragment) {
                return true
            }
            return false
        }
    }

    private static func pack(_ bytes: [UInt8], at start: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in start..<(start + shortestFragment) { value = value << 8 | UInt64(bytes[index]) }
        return value
    }

    // MARK: Credential shapes

    private static let keyPrefixes: [(prefix: [UInt8], least: Int)] = [(Array("sk-".utf8), 16), (Array("AIza".utf8), 30)]

    /// Names after which, past `:` or `=` and optional quotes or spaces, a credential follows.
    private static let credentialNames: [[UInt8]] = [
        "x-goog-api-key", "x-api-key", "api-key", "api_key", "apikey", "authorization", "access_token", "?key", "&key",
    ].map { Array($0.utf8) }
    /// Words a credential follows after whitespace.
    private static let schemes: [[UInt8]] = ["bearer", "basic"].map { Array($0.utf8) }

    private func markCredentialValues(_ bytes: [UInt8], into redacted: inout [Bool]) -> Bool {
        var any = false
        var index = 0
        while index < bytes.count {
            if let end = Self.matchName(Self.schemes, in: bytes, at: index), end < bytes.count, Self.isSpace(bytes[end]) {
                var value = end
                while value < bytes.count, Self.isSpace(bytes[value]) { value += 1 }
                // "Bearer" and "Basic" are ordinary words too.
                let tokenEnd = Self.tokenEnd(bytes, from: value)
                if Self.looksLikeCredential(bytes[value..<tokenEnd]) {
                    any = Self.mark(value..<tokenEnd, in: &redacted) || any
                    index = tokenEnd
                    continue
                }
            }
            if let end = Self.matchName(Self.credentialNames, in: bytes, at: index) {
                var value = end
                while value < bytes.count, bytes[value] == UInt8(ascii: "\"") || bytes[value] == UInt8(ascii: "'") || Self.isSpace(bytes[value]) {
                    value += 1
                }
                if value < bytes.count, bytes[value] == UInt8(ascii: ":") || bytes[value] == UInt8(ascii: "=") {
                    value += 1
                    while value < bytes.count, bytes[value] == UInt8(ascii: "\"") || bytes[value] == UInt8(ascii: "'") || Self.isSpace(bytes[value]) {
                        value += 1
                    }
                    // "Authorization: Bearer x": the scheme is kept, its value found above.
                    if Self.matchName(Self.schemes, in: bytes, at: value) == nil {
                        let tokenEnd = Self.tokenEnd(bytes, from: value)
                        if Self.looksLikeCredential(bytes[value..<tokenEnd]) {
                            any = Self.mark(value..<tokenEnd, in: &redacted) || any
                            index = tokenEnd
                            continue
                        }
                    }
                }
            }
            if let end = Self.keyShapedToken(bytes, at: index) {
                any = Self.mark(index..<end, in: &redacted) || any
                index = end
                continue
            }
            index += 1
        }
        return any
    }

    /// Whether a token is shaped like a key or password rather than a word: 16 or more
    /// bytes, or 8 or more with a digit or a symbol.
    private static func looksLikeCredential(_ token: ArraySlice<UInt8>) -> Bool {
        if token.count >= 16 { return true }
        guard token.count >= shortestFragment else { return false }
        return token.contains { !(($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)) }
    }

    /// The end of an `sk-…` (16 or more token bytes after the dash) or `AIza…` (30 or
    /// more) token starting at `index`, not inside a longer word.
    private static func keyShapedToken(_ bytes: [UInt8], at index: Int) -> Int? {
        if index > 0, isTokenByte(bytes[index - 1]) { return nil }
        for (prefix, least) in keyPrefixes {
            guard index + prefix.count <= bytes.count, bytes[index..<(index + prefix.count)].elementsEqual(prefix) else { continue }
            let end = tokenEnd(bytes, from: index + prefix.count)
            if end - index - prefix.count >= least { return end }
        }
        return nil
    }

    /// The end of `names`' first case-insensitive match at `index`, not inside a longer word.
    private static func matchName(_ names: [[UInt8]], in bytes: [UInt8], at index: Int) -> Int? {
        if index > 0, isWordByte(bytes[index - 1]), isWordByte(bytes[index]) { return nil }
        for name in names where index + name.count <= bytes.count {
            var matches = true
            for offset in 0..<name.count where lowercased(bytes[index + offset]) != name[offset] {
                matches = false
                break
            }
            if matches {
                let end = index + name.count
                if end < bytes.count, isWordByte(bytes[end]), isWordByte(name[name.count - 1]) { continue }
                return end
            }
        }
        return nil
    }

    private static func tokenEnd(_ bytes: [UInt8], from start: Int) -> Int {
        var end = start
        while end < bytes.count, isTokenByte(bytes[end]) { end += 1 }
        // A full stop after a token ends the sentence, not the token.
        while end > start, bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
        return end
    }

    private static func mark(_ range: Range<Int>, in redacted: inout [Bool]) -> Bool {
        guard !range.isEmpty else { return false }
        for index in range { redacted[index] = true }
        return true
    }

    /// Bytes of keys and tokens: letters, digits and `-._~+/=`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        isWordByte(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "~")
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=")
    }

    private static func isWordByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == UInt8(ascii: "_")
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
    }
}
