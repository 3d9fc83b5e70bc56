import Foundation
import NIOCore
import Testing

@testable import Providers

@Suite("OpenAIError")
struct OpenAIErrorTests {
    /// Parses an error body back with Foundation.
    private func fields(_ buffer: ByteBuffer) throws -> [String: Any] {
        let object = try foundationObject(buffer)
        #expect(object.count == 1)
        return try #require(object["error"] as? [String: Any])
    }

    @Test("writes the OpenAI error shape exactly")
    func shape() {
        let error = OpenAIError(status: 400, message: "m", type: "t")
        #expect(text(error.jsonBody()) == #"{"error":{"message":"m","type":"t","param":null,"code":null}}"#)
        let full = OpenAIError(status: 404, message: "m", type: "t", param: "p", code: "c")
        #expect(text(full.jsonBody()) == #"{"error":{"message":"m","type":"t","param":"p","code":"c"}}"#)
    }

    @Test(
        "escapes what JSON requires and parses back the same",
        arguments: [
            "plain", "", "a \"quoted\" word", "back\\slash", "line\nbreak\r\n", "tab\tstop", "nul\u{0}byte",
            "bell\u{7} esc\u{1B} us\u{1F}", "caf\u{e9} \u{1F600} \u{4E2D}", "slash / and del \u{7F}", "</script>",
        ]
    )
    func escaping(message: String) throws {
        let error = OpenAIError(status: 400, message: message, type: "ty\"pe", param: "pa\nram", code: "co\\de")
        let body = error.jsonBody()
        let parsed = try fields(body)
        #expect(parsed["message"] as? String == message)
        #expect(parsed["type"] as? String == "ty\"pe")
        #expect(parsed["param"] as? String == "pa\nram")
        #expect(parsed["code"] as? String == "co\\de")
        // No raw control character survives.
        #expect(!body.readableBytesView.contains { $0 < 0x20 })
    }

    @Test("control characters use the escapes JSON names, or \\u00XX")
    func escapeForms() {
        var buffer = ByteBuffer()
        buffer.writeJSONString("\"\\\n\r\t\u{0}\u{1}\u{8}\u{C}\u{1F}")
        #expect(text(buffer) == #""\"\\\n\r\t\u0000\u0001\u0008\u000c\u001f""#)
    }

    @Test("null param and code parse back as null")
    func nulls() throws {
        let parsed = try fields(OpenAIError.invalidAPIKey.jsonBody())
        #expect(parsed["param"] is NSNull)
        #expect(parsed["code"] as? String == "invalid_api_key")
    }

    @Test("writeJSON appends to what the buffer holds")
    func writeJSONAppends() throws {
        var buffer = ByteBuffer(string: "prefix:")
        OpenAIError(status: 500, message: "x", type: "server_error").writeJSON(into: &buffer)
        #expect(text(buffer).hasPrefix("prefix:{\"error\":"))
        buffer.moveReaderIndex(forwardBy: 7)
        #expect(try fields(buffer)["message"] as? String == "x")
    }

    @Test("an SSE error event is one data line and a blank line around the JSON body")
    func sseEvent() throws {
        let error = OpenAIError(status: 502, message: "upstream\nbroke \"mid-stream\"", type: "server_error", code: "upstream_error")
        let event = text(error.sseEvent())
        #expect(event == "data: " + text(error.jsonBody()) + "\n\n")
        #expect(event.filter { $0 == "\n" }.count == 2)

        var parser = SSEParser()
        let events = parser.feed(error.sseEvent())
        #expect(events.count == 1)
        let parsed = try #require(try foundationObject(events[0].data)["error"] as? [String: Any])
        #expect(parsed["message"] as? String == error.message)
    }

    @Test("Switchyard's own errors carry their status, type, param and code")
    func ownErrors() {
        #expect(OpenAIError.invalidRequest("x", param: "model") == OpenAIError(status: 400, message: "x", type: "invalid_request_error", param: "model"))
        #expect(OpenAIError.invalidAPIKey.status == 401)
        #expect(OpenAIError.missingAPIKey.status == 401)
        #expect(OpenAIError.missingAPIKey.code == "invalid_api_key")
        let notFound = OpenAIError.modelNotFound("chat-huge")
        #expect(notFound.status == 404)
        #expect(notFound.param == "model")
        #expect(notFound.code == "model_not_found")
        #expect(notFound.message.contains("`chat-huge`"))
        let tooLarge = OpenAIError.bodyTooLarge(limit: 1024)
        #expect(tooLarge.status == 413)
        #expect(tooLarge.message.contains("1024"))
        #expect(OpenAIError.upstreamUnavailable("down").status == 503)
        #expect(OpenAIError.upstreamUnavailable("down").code == "upstream_unavailable")
        #expect(OpenAIError.upstreamFailed("x").status == 502)
        #expect(OpenAIError.upstreamFailed("x").type == "server_error")
    }
}
