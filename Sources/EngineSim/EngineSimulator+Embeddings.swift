import Foundation
import Hummingbird

extension EngineSimulator {
    /// Dimensions of the simulated embedding vectors.
    static let embeddingDimensions = 8

    /// `POST /v1/embeddings`: one deterministic unit vector per input.
    ///
    /// Embedding takes a slot for the time to first token (the prefill) and generates nothing.
    func embeddings(_ request: Request, context: EngineRequestContext) async throws -> Response {
        let body = try await context.decodeBody(EmbeddingRequest.self, from: request)
        guard let input = body.input else {
            throw EngineError.invalidRequest("Missing required parameter: 'input'.", param: "input", code: "missing_required_parameter")
        }
        guard !input.isEmpty else {
            throw EngineError.invalidRequest("'input' must not be an empty array.", param: "input", code: "empty_array")
        }
        let base64: Bool
        switch body.encodingFormat ?? "float" {
        case "float": base64 = false
        // The openai Python SDK asks for base64 unless told otherwise.
        case "base64": base64 = true
        default:
            throw EngineError.invalidRequest("'encoding_format' must be 'float' or 'base64'.", param: "encoding_format")
        }

        let digests = input.digests()
        let promptTokens = digests.reduce(0) { $0 + $1.tokens }
        try await slotQueue.acquire()
        do {
            if pacer.timeToFirstToken > .zero {
                try await Task.sleep(until: .now + pacer.timeToFirstToken, clock: .continuous)
            }
        } catch {
            await slotQueue.release()
            throw error
        }
        await slotQueue.release()
        await metrics.record(promptTokens: promptTokens, generationTokens: 0)

        var json = "{\"id\":\(JSONText.quoted(Self.responseID(prefix: "embd-"))),\"object\":\"list\","
        json += "\"created\":\(Self.unixTime()),\"model\":\(JSONText.quoted(body.model ?? Self.servedModelName)),\"data\":["
        for (index, digest) in digests.enumerated() {
            let vector = Generation.embedding(for: digest, dimensions: Self.embeddingDimensions)
            if index > 0 { json += "," }
            json += "{\"object\":\"embedding\",\"index\":\(index),\"embedding\":"
            json += base64 ? JSONText.quoted(Self.base64(vector)) : "[" + vector.map { "\($0)" }.joined(separator: ",") + "]"
            json += "}"
        }
        json += "],\"usage\":{\"prompt_tokens\":\(promptTokens),\"total_tokens\":\(promptTokens)}}"
        return Self.jsonResponse(json)
    }

    /// Little-endian float32 bytes in base64, the layout OpenAI's `base64` encoding uses.
    static func base64(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(vector.count * 4)
        for value in vector {
            let bits = value.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return Data(bytes).base64EncodedString()
    }
}
