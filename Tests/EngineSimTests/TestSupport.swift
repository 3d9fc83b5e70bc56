import Foundation
import Hummingbird
import Logging
import Testing

@testable import EngineSim

/// A simulator that never sleeps, so tests depend on behaviour and not on timing.
func makeUnpacedSimulator(slots: Int = 4, defaultMaxTokens: Int = 16) -> EngineSimulator {
    EngineSimulator(
        configuration: .init(port: 0, timeToFirstToken: .zero, tokensPerSecond: 0, slots: slots, defaultMaxTokens: defaultMaxTokens),
        logger: Logger(label: "EngineSimTests")
    )
}

/// Parses a JSON object out of a response body.
func jsonObject(_ buffer: ByteBuffer) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
    return try #require(object as? [String: Any])
}

/// Parses a JSON object out of a string.
func jsonObject(_ text: String) throws -> [String: Any] {
    try jsonObject(ByteBuffer(string: text))
}

/// The `data:` payloads of an SSE body, in order, checking each event is framed as one
/// `data: …` line followed by a blank line.
func sseData(_ buffer: ByteBuffer) throws -> [String] {
    let text = String(buffer: buffer)
    #expect(text.hasSuffix("\n\n"))
    return try text.components(separatedBy: "\n\n").dropLast().map { event in
        try #require(event.hasPrefix("data: ") && !event.contains("\n"), "bad SSE event: \(event)")
        return String(event.dropFirst("data: ".count))
    }
}

/// A request body from JSON text.
func body(_ json: String) -> ByteBuffer {
    ByteBuffer(string: json)
}

let jsonHeaders: HTTPFields = [.contentType: "application/json"]
