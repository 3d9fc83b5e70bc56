import NIOCore

/// Fixes the quirks of a self-hosted engine's non-streaming chat answer so it reads as
/// OpenAI's: TGI answers `"id":""` and ends tool calls with `finish_reason: "stop"`; and
/// names the public model rather than the engine's. Spliced, not re-encoded; an answer
/// without those quirks comes back as it was.
enum EngineResponseQuirks {
    /// The body with its quirks fixed; the body itself when it has none or is no JSON object.
    static func normalise(_ body: ByteBuffer, labels: ResponseLabels) -> ByteBuffer {
        let data = Array(body.readableBytesView)
        var edits = JSONEdits()
        let model = [UInt8].jsonString(labels.model)
        data.withUnsafeBytes { raw in
            let scanner = JSONScanner(raw)
            guard let members = try? scanner.topLevelMembers() else { return }
            for member in members {
                if scanner.key(member, equals: "model"), scanner.kind(at: member.value.lowerBound) == .string,
                   !raw[member.value].elementsEqual(model) {
                    edits.replace(member.value, with: model)
                } else if scanner.key(member, equals: "id"), scanner.isNullOrEmptyString(at: member.value) {
                    edits.replace(member.value, with: .jsonString(labels.id))
                } else if scanner.key(member, equals: "choices"), scanner.kind(at: member.value.lowerBound) == .array {
                    for choice in (try? scanner.elements(ofArrayAt: member.value)) ?? [] {
                        fixFinishReason(ofChoiceAt: choice, scanner: scanner, edits: &edits)
                    }
                }
            }
        }
        guard !edits.isEmpty else { return body }
        return ByteBuffer(bytes: edits.applied(to: data))
    }

    /// A choice whose message made tool calls finished with `tool_calls`, whatever
    /// the engine called it.
    private static func fixFinishReason(ofChoiceAt range: Range<Int>, scanner: JSONScanner, edits: inout JSONEdits) {
        guard scanner.kind(at: range.lowerBound) == .object,
              let members = try? scanner.members(ofObjectAt: range),
              let finishReason = members.first(where: { scanner.key($0, equals: "finish_reason") }),
              scanner.isString(at: finishReason.value, "stop"),
              let message = members.first(where: { scanner.key($0, equals: "message") }),
              scanner.kind(at: message.value.lowerBound) == .object,
              let messageMembers = try? scanner.members(ofObjectAt: message.value),
              let toolCalls = messageMembers.first(where: { scanner.key($0, equals: "tool_calls") }),
              scanner.kind(at: toolCalls.value.lowerBound) == .array,
              let count = try? scanner.countElements(ofArrayAt: toolCalls.value), count > 0
        else { return }
        edits.replace(finishReason.value, with: Array(#""tool_calls""#.utf8))
    }
}
