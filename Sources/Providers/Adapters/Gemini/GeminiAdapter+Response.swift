import Foundation
import NIOCore

extension GeminiAdapter {
    /// Translates a `generateContent` answer: the first candidate's text, its thought
    /// summaries as `reasoning_content` when reasoning is exposed, its function calls, its
    /// finish reason and the usage.
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
                content: nil, toolCalls: [], finishReason: GeminiFinishReason.promptBlocked, usage: usage
            )
            return TranslatedResponse(body: body, usage: usage)
        }

        var text = ""
        var reasoning: String?
        var calls = GeminiFunctionCalls()
        var events: [GeminiFunctionCalls.Event] = []
        for part in response.parts {
            if part.thought == true {
                if labels.exposeReasoning, let partText = part.text { reasoning = (reasoning ?? "") + partText }
            } else if let partText = part.text {
                text += partText
            }
            if let call = part.functionCall { events += calls.receive(call) }
        }
        events += calls.finish()
        var toolCalls: [ToolCall] = []
        for event in events {
            switch event {
            case .start(_, let id, let name, let arguments):
                toolCalls.append(ToolCall(id: id, name: name, arguments: arguments))
            case .arguments(let index, let fragment):
                toolCalls[index].function.arguments += fragment
            }
        }
        let finishReason = GeminiFinishReason.openAI(candidate.finishReason ?? "STOP", sawToolCalls: !toolCalls.isEmpty)
        // OpenAI answers `null` content for tool calls only and for filtered answers.
        let withholdsContent = text.isEmpty && (!toolCalls.isEmpty || finishReason == "content_filter")
        let body = encoder.completion(
            content: withholdsContent ? nil : text,
            toolCalls: toolCalls,
            finishReason: finishReason,
            usage: usage,
            reasoning: reasoning
        )
        return TranslatedResponse(body: body, usage: usage)
    }
}
