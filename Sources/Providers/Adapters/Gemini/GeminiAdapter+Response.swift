import Foundation
import NIOCore

extension GeminiAdapter {
    /// Translates a `generateContent` answer: the first candidate's text (thoughts left
    /// out) and function calls, its finish reason and the usage.
    public func translateResponse(_ body: ByteBuffer, head: InferenceRequestHead, labels: ResponseLabels) throws(OpenAIError) -> TranslatedResponse {
        guard let response = GeminiResponse.decode(body.readableBytesView) else {
            throw OpenAIError.upstreamFailed("The upstream answered with a body Switchyard could not read.")
        }
        if let error = response.error {
            throw error.openAIError(httpStatus: error.code ?? 500)
        }
        let usage = response.usageMetadata?.tokenUsage
        let encoder = ChatCompletionEncoder(labels: labels)
        guard let candidate = response.candidates?.first else {
            guard response.promptFeedback?.blockReason != nil else {
                throw OpenAIError.upstreamFailed("The upstream answered with no candidates.")
            }
            let body = encoder.completion(
                content: nil, toolCalls: [], finishReason: GeminiFinishReason.promptBlocked, usage: usage, model: response.modelVersion
            )
            return TranslatedResponse(body: body, usage: usage)
        }

        var text = ""
        var toolCalls: [ToolCall] = []
        for part in response.answerParts {
            if let partText = part.text { text += partText }
            if let call = part.functionCall { toolCalls.append(call.toolCall(index: toolCalls.count)) }
        }
        let finishReason = GeminiFinishReason.openAI(candidate.finishReason ?? "STOP", sawToolCalls: !toolCalls.isEmpty)
        // OpenAI answers `null` content for tool calls only and for filtered answers.
        let withholdsContent = text.isEmpty && (!toolCalls.isEmpty || finishReason == "content_filter")
        let body = encoder.completion(
            content: withholdsContent ? nil : text,
            toolCalls: toolCalls,
            finishReason: finishReason,
            usage: usage,
            model: response.modelVersion
        )
        return TranslatedResponse(body: body, usage: usage)
    }
}
