import Foundation
import NIOCore

extension AnthropicStreamTranslator {
    /// The translation's state: which content blocks are open and what they map to, the
    /// stop reason and usage reported so far, and whether the stream ended.
    struct StateMachine: Sendable {
        enum Phase: Sendable, Equatable {
            case open
            /// `message_stop` arrived and `[DONE]` went out.
            case finished
            /// An error event went out; nothing may follow it.
            case failed
        }

        /// What an Anthropic content block (by its `index`) becomes.
        enum Block: Sendable, Equatable {
            case text
            /// OpenAI tool call `index`; `sentArguments` once a non-empty fragment went out.
            /// `startInput` is an input given whole at the block's start, used if no
            /// fragments follow.
            case tool(index: Int, sentArguments: Bool, startInput: JSONValue?)
            /// Thinking, redacted thinking, server tools, their results: not sent.
            case ignored
        }

        private static let decoder = JSONDecoder()

        let encoder: ChatCompletionEncoder
        let clientWantsUsage: Bool
        private(set) var phase = Phase.open
        private(set) var contentChunks = 0
        private(set) var upstreamError: OpenAIError?
        private var sentRole = false
        private var model: String?
        private var blocks: [Int: Block] = [:]
        private var toolCalls = 0
        private var stopReason: String?
        private var reportedUsage: AnthropicUsage?

        init(encoder: ChatCompletionEncoder, clientWantsUsage: Bool) {
            self.encoder = encoder
            self.clientWantsUsage = clientWantsUsage
        }

        var usage: TokenUsage? { reportedUsage?.tokenUsage }

        // MARK: Events

        mutating func receive(_ event: SSEEvent, into output: inout ByteBuffer) {
            guard phase == .open else { return }
            guard let decoded = try? Self.decoder.decode(AnthropicStreamEvent.self, from: Data(event.data)) else {
                // Anthropic sends JSON only; text or calls we cannot read must not vanish
                // silently from an answer that then looks complete.
                fail(.upstreamFailed("The upstream stream sent an event Switchyard could not read."), into: &output)
                return
            }
            switch decoded.type {
            case "message_start":
                model = decoded.message?.model ?? model
                if let usage = decoded.message?.usage { mergeUsage(usage) }
                sendRoleIfNeeded(into: &output)
            case "content_block_start":
                if let index = decoded.index, let block = decoded.contentBlock { startBlock(block, at: index, into: &output) }
            case "content_block_delta":
                if let index = decoded.index, let delta = decoded.delta { apply(delta, toBlockAt: index, into: &output) }
            case "content_block_stop":
                if let index = decoded.index { closeBlock(at: index, into: &output) }
            case "message_delta":
                stopReason = decoded.delta?.stopReason ?? stopReason
                if let usage = decoded.usage { mergeUsage(usage) }
            case "message_stop":
                finishMessage(into: &output)
            case "error":
                fail(AnthropicError.map(streamError: decoded.error), into: &output)
            default:
                // `ping`, and event types added later: Anthropic asks clients to skip them.
                break
            }
        }

        /// The upstream's bytes ended. Without `message_stop` the answer is incomplete:
        /// the client is told so rather than given a stream that looks finished.
        mutating func endOfStream(into output: inout ByteBuffer) {
            guard phase == .open else { return }
            fail(OpenAIError(status: 502, message: "upstream stream ended early", type: "server_error", code: "upstream_error"), into: &output)
        }

        // MARK: Blocks

        private mutating func startBlock(_ block: AnthropicContentBlock, at index: Int, into output: inout ByteBuffer) {
            switch block.type {
            case "text":
                blocks[index] = .text
                if let text = block.text, !text.isEmpty { sendContent(text, into: &output) }
            case "tool_use":
                let toolIndex = toolCalls
                toolCalls += 1
                let startInput = block.input.flatMap { $0 == .object([:]) ? nil : $0 }
                blocks[index] = .tool(index: toolIndex, sentArguments: false, startInput: startInput)
                sendRoleIfNeeded(into: &output)
                encoder.toolCallStartChunk(index: toolIndex, id: block.id ?? "", name: block.name ?? "", model: model, into: &output)
                contentChunks += 1
            default:
                blocks[index] = .ignored
            }
        }

        private mutating func apply(_ delta: AnthropicStreamEvent.Delta, toBlockAt index: Int, into output: inout ByteBuffer) {
            switch (blocks[index], delta.type) {
            case (.text, "text_delta"):
                if let text = delta.text, !text.isEmpty { sendContent(text, into: &output) }
            case (.tool(let toolIndex, _, let startInput), "input_json_delta"):
                // Anthropic opens every call with an empty fragment; it carries nothing.
                guard let fragment = delta.partialJSON, !fragment.isEmpty else { return }
                blocks[index] = .tool(index: toolIndex, sentArguments: true, startInput: startInput)
                encoder.toolCallArgumentsChunk(index: toolIndex, fragment: fragment, model: model, into: &output)
                contentChunks += 1
            default:
                // Thinking and signature deltas, citations, deltas of ignored blocks.
                break
            }
        }

        /// A call that streamed no arguments still owes the client arguments that parse
        /// as JSON: the input given at its start, else `{}`.
        private mutating func closeBlock(at index: Int, into output: inout ByteBuffer) {
            if case .tool(let toolIndex, false, let startInput) = blocks[index] {
                let arguments = startInput?.jsonText ?? "{}"
                encoder.toolCallArgumentsChunk(index: toolIndex, fragment: arguments, model: model, into: &output)
                contentChunks += 1
            }
            blocks[index] = nil
        }

        // MARK: Output

        private mutating func finishMessage(into output: inout ByteBuffer) {
            for index in blocks.keys.sorted() {
                closeBlock(at: index, into: &output)
            }
            sendRoleIfNeeded(into: &output)
            encoder.finishChunk(AnthropicAdapter.finishReason(stopReason), model: model, into: &output)
            if clientWantsUsage, let usage {
                encoder.usageChunk(usage, model: model, into: &output)
            }
            encoder.done(into: &output)
            phase = .finished
        }

        private mutating func fail(_ error: OpenAIError, into output: inout ByteBuffer) {
            upstreamError = error
            ChatCompletionEncoder.errorEvent(error, into: &output)
            phase = .failed
        }

        private mutating func sendRoleIfNeeded(into output: inout ByteBuffer) {
            guard !sentRole else { return }
            sentRole = true
            encoder.roleChunk(model: model, into: &output)
        }

        private mutating func sendContent(_ text: String, into output: inout ByteBuffer) {
            sendRoleIfNeeded(into: &output)
            encoder.contentChunk(text, model: model, into: &output)
            contentChunks += 1
        }

        private mutating func mergeUsage(_ newer: AnthropicUsage) {
            reportedUsage = reportedUsage?.updated(with: newer) ?? newer
        }
    }
}
