import Foundation
import NIOCore

/// What a client set at the top level of its request, read beside `ChatRequest`: which
/// keys carry a value (null means "not set" in OpenAI's API, so null members count as
/// absent), and the raw values of the few members `ChatRequest` does not decode.
struct AnthropicClientParameters: Sendable, Equatable {
    /// Top-level keys whose value is not null.
    var names: Set<String> = []
    /// Anthropic's `thinking` object, which Anthropic's OpenAI layer accepts as an extra.
    var thinking: JSONValue?
    /// OpenAI's `modalities`, refused unless text only.
    var modalities: JSONValue?
    /// OpenAI's successor to `user`: an opaque end-user id for abuse detection.
    var safetyIdentifier: String?

    init() {}

    /// Reads the top-level members of a request body (already known to be an object).
    init(body: ByteBuffer) {
        self = body.withUnsafeReadableBytes { raw in
            var parameters = AnthropicClientParameters()
            let scanner = JSONScanner(raw)
            guard let members = try? scanner.topLevelMembers() else { return parameters }
            for member in members where !scanner.isNull(at: member.value) {
                let name = scanner.decodeString(contentsOf: member.key)
                parameters.names.insert(name)
                switch name {
                case "thinking":
                    parameters.thinking = Self.value(UnsafeRawBufferPointer(rebasing: raw[member.value]))
                case "modalities":
                    parameters.modalities = Self.value(UnsafeRawBufferPointer(rebasing: raw[member.value]))
                case "safety_identifier":
                    parameters.safetyIdentifier = scanner.string(at: member.value)
                default:
                    break
                }
            }
            return parameters
        }
    }

    private static func value(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }
}
