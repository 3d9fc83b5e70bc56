import Foundation
import NIOCore

extension AnthropicAdapter {
    /// Translates a Messages answer into a `chat.completion`.
    ///
    /// Text blocks, concatenated, are the content (nil when there are none); `tool_use`
    /// blocks are the tool calls. Thinking blocks are the `reasoning_content`, and with
    /// their signatures the `thinking_blocks`, when reasoning is exposed; server-tool
    /// blocks are not part of the answer a Chat Completions client reads.
    ///
    /// - Throws: `OpenAIError` when the body is an error or cannot be read.
    public func translateResponse(_ body: ByteBuffer, head: InferenceRequestHead, labels: ResponseLabels) throws(OpenAIError) -> TranslatedResponse {
        let data = Data(body.readableBytesView)
        let message: AnthropicMessage
        do {
            message = try JSONDecoder().decode(AnthropicMessage.self, from: data)
        } catch {
            if let failure = try? JSONDecoder().decode(AnthropicErrorBody.self, from: data) {
                throw AnthropicError.map(streamError: failure.error)
            }
            throw .upstreamFailed("The upstream provider's answer could not be read.")
        }
        var text: String?
        var toolCalls: [ToolCall] = []
        var reasoning: String?
        var thinkingBlocks: [ThinkingBlock] = []
        for block in message.content {
            switch block.type {
            case "thinking" where labels.exposeReasoning:
                reasoning = (reasoning ?? "") + (block.thinking ?? "")
                thinkingBlocks.append(ThinkingBlock(type: "thinking", thinking: block.thinking ?? "", signature: block.signature))
            case "redacted_thinking" where labels.exposeReasoning:
                thinkingBlocks.append(ThinkingBlock(type: "redacted_thinking", data: block.data))
            case "text":
                text = (text ?? "") + (block.text ?? "")
            case "tool_use":
                let arguments = block.input ?? .object([:])
                toolCalls.append(ToolCall(id: block.id ?? "", name: block.name ?? "", arguments: arguments.jsonText))
            default:
                continue
            }
        }
        let usage = message.usage?.tokenUsage
        let completion = ChatCompletionEncoder(labels: labels).completion(
            content: text,
            toolCalls: toolCalls,
            finishReason: Self.finishReason(message.stopReason),
            usage: usage,
            reasoning: reasoning,
            thinkingBlocks: thinkingBlocks
        )
        return TranslatedResponse(body: completion, usage: usage)
    }

    /// Anthropic's `stop_reason` as OpenAI's `finish_reason`. A paused turn (a server
    /// tool ran long) ends this answer as a normal stop; an unknown or missing reason too.
    static func finishReason(_ stopReason: String?) -> String {
        switch stopReason {
        case "max_tokens", "model_context_window_exceeded": "length"
        case "tool_use": "tool_calls"
        case "refusal": "content_filter"
        default: "stop"
        }
    }
}
