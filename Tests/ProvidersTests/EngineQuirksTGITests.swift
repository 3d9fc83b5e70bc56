import Foundation
import NIOCore
import Testing

@testable import Providers

/// The recorded TGI streams (JSON lists of chunks), relayed as SSE in front of an engine.
@Suite("Engine quirks: recorded TGI streams")
struct EngineQuirksTGITests {
    static let recordings = [
        "local-engines/tgi/chat-stream-include_usage.hf-client.json",
        "local-engines/tgi/chat-stream-include_usage.openai-client.json",
        "local-engines/tgi/chat-stream-no-usage.openai-client.json",
        "local-engines/tgi/chat-stream-tool-call.openai-client.json",
    ]

    // MARK: Helpers

    private func recordedChunks(_ path: String) throws -> [[String: Any]] {
        try #require(try foundationJSON(Fixtures.bytes(path)) as? [[String: Any]])
    }

    /// The recording as the engine sent it: one `data:` event per chunk.
    private func sse(_ chunks: [[String: Any]], done: Bool) throws -> [UInt8] {
        var bytes: [UInt8] = []
        for chunk in chunks {
            let json = try JSONSerialization.data(withJSONObject: chunk, options: [.sortedKeys, .withoutEscapingSlashes])
            bytes += Array("data: ".utf8) + Array(json) + Array("\n\n".utf8)
        }
        if done { bytes += Array("data: [DONE]\n\n".utf8) }
        return bytes
    }

    private func json(_ text: String) throws -> NSDictionary {
        NSDictionary(dictionary: try foundationObject(Array(text.utf8)))
    }

    // MARK: Tests

    @Test("identical output whatever the chunk boundaries", arguments: recordings)
    func rechunked(path: String) throws {
        let recorded = try recordedChunks(path)
        for done in [true, false] {
            let input = try sse(recorded, done: done)
            for wantsUsage in [true, false] {
                let (whole, wholeRelay) = EngineStream.relay([input], wantsUsage: wantsUsage)
                #expect(!whole.isEmpty)
                for seed: UInt64 in 1...12 {
                    let maximum = [1, 2, 7, 33, 120, 600][Int(seed) % 6]
                    let (output, relay) = EngineStream.relay(chunked(input, seed: seed, maximumChunk: maximum), wantsUsage: wantsUsage)
                    #expect(output == whole, "seed \(seed), done \(done), wantsUsage \(wantsUsage)")
                    #expect(relay.usage == wholeRelay.usage)
                    #expect(relay.contentChunks == wholeRelay.contentChunks)
                }
            }
        }
    }

    @Test("the client gets the recording's answer in OpenAI's shape", arguments: recordings)
    func openAIShape(path: String) throws {
        let recorded = try recordedChunks(path)
        let expected = EngineStream.assemble(recorded)
        let recordedUsage = recorded.compactMap { $0["usage"] as? [String: Any] }.last
        let isToolCall = !expected.toolCalls.isEmpty
        // What the recordings themselves show: TGI's quirks, for the assertions below to matter.
        #expect(recorded.allSatisfy { $0["id"] as? String == "" })
        #expect(expected.roles.count == recorded.filter { !($0["choices"] as? [Any] ?? []).isEmpty }.count)

        for done in [true, false] {
            for wantsUsage in [true, false] {
                let context = "done \(done), wantsUsage \(wantsUsage)"
                let (output, relay) = EngineStream.relay([try sse(recorded, done: done)], wantsUsage: wantsUsage)
                let text = String(decoding: output, as: UTF8.self)
                for event in text.components(separatedBy: "\n\n").dropLast() {
                    #expect(event.hasPrefix("data: ") && !event.contains("\n"), "\(context)")
                }
                let chunks = try EngineStream.chunks(output)
                let got = EngineStream.assemble(chunks)

                #expect(got.ids.allSatisfy { $0 == EngineStream.labels.id }, "\(context)")
                #expect(got.content == expected.content, "\(context)")
                #expect(got.roles == ["assistant"], "\(context)")

                // Usage: read either way; a separate usage chunk only when asked for.
                if let recordedUsage {
                    #expect(relay.usage == TokenUsage(
                        promptTokens: try #require(recordedUsage["prompt_tokens"] as? Int),
                        completionTokens: try #require(recordedUsage["completion_tokens"] as? Int)
                    ), "\(context)")
                    #expect(got.usageChunks.count == (wantsUsage ? 1 : 0), "\(context)")
                    if wantsUsage {
                        let usage = try #require(got.usageChunks.first?["usage"] as? [String: Any])
                        #expect(NSDictionary(dictionary: usage) == NSDictionary(dictionary: recordedUsage), "\(context)")
                    }
                } else if wantsUsage, text.hasSuffix("data: [DONE]\n\n") {
                    // The engine reported none: the client still gets a usage chunk, the
                    // estimate the ledger records.
                    #expect(relay.usage?.estimated == true, "\(context)")
                    #expect(got.usageChunks.count == 1, "\(context)")
                } else {
                    #expect(relay.usage == nil)
                    #expect(got.usageChunks.isEmpty)
                }
                #expect(got.usageOnChoices == 0)
                if !wantsUsage { #expect(!text.contains(#""usage""#), "\(context)") }

                if isToolCall {
                    try checkToolCall(got: got, expected: expected, context: context)
                }

                // How the stream ends. The tool-call recording has no finish chunk: after the
                // engine's [DONE] one is added; without [DONE] nothing says the answer is
                // whole, so nothing is added and the client sees a cut-off stream.
                let events = EngineStream.events(text)
                if done || !isToolCall {
                    #expect(events.last == "[DONE]", "\(context)")
                    #expect(events.filter { $0 == "[DONE]" }.count == 1)
                    let recordedReason = expected.finishReasons.last
                    #expect(got.finishReasons == [isToolCall ? "tool_calls" : try #require(recordedReason)], "\(context)")
                    if wantsUsage, recordedUsage != nil {
                        let last = try #require(chunks.last)
                        #expect((last["choices"] as? [Any])?.isEmpty == true && last["usage"] is [String: Any], "\(context)")
                    }
                } else {
                    #expect(!events.contains("[DONE]"), "\(context)")
                    #expect(got.finishReasons.isEmpty, "\(context)")
                }
            }
        }
    }

    /// One id, one type and one name for the call, on its first delta; later deltas only
    /// `index` and `function.arguments`; the arguments the recording's, as JSON.
    private func checkToolCall(got: EngineStream.Assembled, expected: EngineStream.Assembled, context: String) throws {
        let recordedCall = try #require(expected.toolCalls[0])
        #expect(recordedCall.ids.count > 1, "the recording repeats the id")
        let call = try #require(got.toolCalls[0])
        #expect(got.toolCalls.count == 1)
        #expect(call.ids == [recordedCall.ids[0]], "\(context)")
        #expect(call.types == ["function"], "\(context)")
        #expect(call.names == ["get_current_weather"], "\(context)")
        #expect(call.names == recordedCall.names, "\(context)")
        #expect(!call.laterKeys.isEmpty)
        #expect(call.laterKeys.allSatisfy { $0 == ["index", "function"] }, "\(context)")
        #expect(call.laterFunctionKeys.allSatisfy { $0 == ["arguments"] }, "\(context)")
        #expect(call.arguments == recordedCall.arguments)
        #expect(try json(call.arguments) == json(#"{"location":"Brooklyn, NY","format":"fahrenheit"}"#), "\(context)")
    }

    @Test("in front of OpenAI the same recordings are relayed as they are")
    func openAIPassThrough() throws {
        for path in Self.recordings {
            let input = try sse(try recordedChunks(path), done: true)
            let (output, relay) = EngineStream.relay([input], wantsUsage: true, engine: false)
            if relay.usage?.estimated == true {
                // The recording has no usage: the client that asked gets an estimate just
                // before [DONE]; every other event is the recording's.
                let events = EngineStream.events(output)
                #expect(Array(events.dropLast(2)) == Array(EngineStream.events(EngineStream.named(input)).dropLast()))
                #expect(try foundationObject(events[events.count - 2])["usage"] != nil)
            } else {
                #expect(output == EngineStream.named(input))
            }
        }
    }
}
