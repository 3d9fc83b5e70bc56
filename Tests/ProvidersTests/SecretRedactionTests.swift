import NIOCore
import Testing

@testable import Providers

@Suite("Secret redaction")
struct SecretRedactionTests {
    private let key = "sk-proj-Abc123XYZ987def456GHI789jklMNO"

    @Test("the key, whole or any piece of 8 or more bytes, is redacted wherever it appears")
    func knownSecret() {
        let redaction = SecretRedaction(secrets: [key])
        let pieces = [key, String(key.dropFirst(5).prefix(8)), String(key.suffix(12)), String(key.dropFirst(3).prefix(20))]
        for piece in pieces {
            let redacted = redaction.redact("Incorrect API key provided: \(piece). You can find your key at https://x")
            #expect(!redacted.contains(piece), "\(piece) in \(redacted)")
            #expect(redacted.contains("[redacted]"))
            #expect(redacted.hasPrefix("Incorrect API key provided: "))
            #expect(redacted.hasSuffix(". You can find your key at https://x"))
        }
        // Seven bytes are no secret (and the last four are shown by design).
        #expect(redaction.redact("ends in \(key.suffix(7))") == "ends in \(key.suffix(7))")
    }

    @Test("no piece of 8 bytes of the secret survives, for every offset")
    func everyOffset() {
        let redaction = SecretRedaction(secrets: [key])
        let bytes = Array(key.utf8)
        for start in 0...(bytes.count - 8) {
            for length in 8...(bytes.count - start) {
                let piece = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
                let redacted = redaction.redact("x \(piece) y")
                for index in 0...(bytes.count - 8) {
                    let window = String(decoding: bytes[index..<(index + 8)], as: UTF8.self)
                    #expect(!redacted.contains(window), "\(window) survived in \(redacted)")
                }
            }
        }
    }

    @Test(
        "credential-like values are redacted even when the secret is unknown",
        arguments: [
            ("Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [redacted]"),
            ("authorization=Basic dXNlcjpwYXNzd29yZA==", "authorization=Basic [redacted]"),
            (#"{"x-api-key": "abcd1234efgh"}"#, #"{"x-api-key": "[redacted]"}"#),
            ("x-goog-api-key:AIzaSyD-abcdefghijklmnopqrstuvwxyz0", "x-goog-api-key:[redacted]"),
            ("GET https://example.test/v1/models?key=AIzaSecret123&alt=sse", "GET https://example.test/v1/models?key=[redacted]&alt=sse"),
            ("api_key='zzzz9999'", "api_key='[redacted]'"),
            ("key sk-ant-api03-abcdefghijklmnopqrstuv was rejected", "key [redacted] was rejected"),
            ("AIzaSyD-abcdefghijklmnopqrstuvwxyz0123 is invalid", "[redacted] is invalid"),
        ]
    )
    func credentialShapes(text: String, expected: String) {
        #expect(SecretRedaction.credentialShapes.redact(text) == expected)
    }

    @Test(
        "ordinary provider messages are left as they are",
        arguments: [
            "The model `gpt-5` does not exist or you do not have access to it.",
            "Rate limit reached for requests. Limit: 10000, Used: 10000, Requested: 1.",
            "'messages' must contain at least one message; see the API key section of the docs.",
            "Bearer token missing",
            "Invalid value for 'api_key' parameter.",
            "This endpoint requires basic authentication.",
            "Authorization: missing header",
            "Bearer authentication failed",
            "max_tokens is too large: 9999999. This model supports at most 16384 completion tokens.",
        ]
    )
    func ordinaryText(text: String) {
        #expect(SecretRedaction(secrets: [key]).redact(text) == text)
    }

    @Test("an error's message and parameter are redacted; an SSE event stays JSON")
    func errorsAndEvents() throws {
        let redaction = SecretRedaction(secrets: [key])
        let error = OpenAIError(status: 400, message: "bad key \(key)", type: "invalid_request_error", param: "key=\(key)")
        let redacted = redaction.redact(error)
        #expect(redacted.message == "bad key [redacted]")
        #expect(redacted.param?.contains(key) == false)
        #expect(redacted.status == 400)
        let event = redaction.redact(error.sseEvent())
        let text = String(buffer: event)
        #expect(!text.contains(key))
        #expect(text.hasPrefix("data: {\"error\":{\"message\":\"bad key [redacted]\""))
    }

    @Test("a secret too short to match in pieces is redacted where it appears whole")
    func shortSecret() {
        let redaction = SecretRedaction(secrets: ["abc1234"])
        #expect(redaction.redact("Invalid API key: abc1234.") == "Invalid API key: [redacted].")
        #expect(redaction.redact("abc123 is not it") == "abc123 is not it")
    }
}


@Suite("SecretRedaction: what stands behind the endpoint")
struct EndpointNamesRedactionTests {
    let redaction = SecretRedaction(secrets: ["sk-test-abcdefghijklmnop"], renaming: ["gpt-4o-mini-2024-07-18": "chat-small"])

    @Test func upstreamModelBecomesThePublicOne() {
        #expect(redaction.redact("The model `gpt-4o-mini-2024-07-18` does not support audio.") == "The model `chat-small` does not support audio.")
    }

    @Test(arguments: [
        ("Invalid request. See https://platform.openai.com/docs/guides/error-codes.", "Invalid request. See [link removed]."),
        ("See https://docs.anthropic.com/en/docs/models for the Anthropic models that do.", "See [link removed] for the provider models that do."),
        ("This violates Azure OpenAI's content management policy.", "This violates the provider's content management policy."),
        ("an OpenAI key was rejected", "a provider key was rejected"),
        ("Visit (https://ai.google.dev/gemini-api/docs/rate-limits) to learn more", "Visit ([link removed]) to learn more"),
        ("Keep https://example.com/docs as it is", "Keep https://example.com/docs as it is"),
    ])
    func providerNamesAndLinksGo(text: String, expected: String) {
        #expect(redaction.redact(text) == expected)
    }

    @Test func keysAreStillRedactedAlongside() {
        #expect(redaction.redact("key sk-test-abcdefghijklmnop for gpt-4o-mini-2024-07-18") == "key [redacted] for chat-small")
    }
}
