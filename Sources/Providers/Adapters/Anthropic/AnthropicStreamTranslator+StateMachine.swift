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
            /// Reasoning, sent when exposed: its text so far and its signature.
            case thinking(text: String, signature: String)
            case redactedThinking(data: String)
            /// Server tools, their results, and reasoning not exposed: not sent.
            case ignored
        }

        private static let decoder = JSONDecoder()

        let encoder: ChatCompletionEncoder
        let clientWantsUsage: Bool
        let exposeReasoning: Bool
        private(set) var phase = Phase.open
        private(set) var contentChunks = 0
        private(set) var upstreamError: OpenAIError?
        private var sentRole = false
        private var blocks: [Int: Block] = [:]
        private var toolCalls = 0
        private var stopReason: String?
        private var reportedUsage: AnthropicUsage?

        init(encoder: ChatCompletionEncoder, clientWantsUsage: Bool, exposeReasoning: Bool = false) {
            self.encoder = encoder
            self.clientWantsUsage = clientWantsUsage
            self.exposeReasoning = exposeReasoning
        }

        /// The usage Anthropic reported, or once the client was sent an estimate in its
        /// place, that estimate.
        private(set) var usage: TokenUsage?

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

        /// The upstream ended the stream with a bare JSON error instead of events.
        mutating func receiveStrayError(_ body: ByteBuffer, into output: inout ByteBuffer) {
            guard phase == .open else { return }
            let detail = try? Self.decoder.decode(AnthropicErrorBody.self, from: Data(body.readableBytesView)).error
            fail(detail.map { AnthropicError.map(streamError: $0) } ?? UpstreamError.map(status: 502, body: body), into: &output)
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
                encoder.toolCallStartChunk(index: toolIndex, id: block.id ?? "", name: block.name ?? "", into: &output)
                contentChunks += 1
            case "thinking" where exposeReasoning:
                blocks[index] = .thinking(text: block.thinking ?? "", signature: block.signature ?? "")
                if let text = block.thinking, !text.isEmpty { sendReasoning(text, into: &output) }
            case "redacted_thinking" where exposeReasoning:
                blocks[index] = .redactedThinking(data: block.data ?? "")
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
                encoder.toolCallArgumentsChunk(index: toolIndex, fragment: fragment, into: &output)
                contentChunks += 1
            case (.thinking(let text, let signature), "thinking_delta"):
                guard let piece = delta.thinking, !piece.isEmpty else { return }
                blocks[index] = .thinking(text: text + piece, signature: signature)
                sendReasoning(piece, into: &output)
            case (.thinking(let text, let signature), "signature_delta"):
                blocks[index] = .thinking(text: text, signature: signature + (delta.signature ?? ""))
            default:
                // Citations, deltas of ignored blocks.
                break
            }
        }

        /// A call that streamed no arguments still owes the client arguments that parse
        /// as JSON: the input given at its start, else `{}`.
        /// A thinking block, finished, goes out whole with its signature for the client to
        /// send back.
        private mutating func closeBlock(at index: Int, into output: inout ByteBuffer) {
            switch blocks[index] {
            case .tool(let toolIndex, false, let startInput):
                let arguments = startInput?.jsonText ?? "{}"
                encoder.toolCallArgumentsChunk(index: toolIndex, fragment: arguments, into: &output)
                contentChunks += 1
            case .thinking(let text, let signature):
                sendRoleIfNeeded(into: &output)
                encoder.thinkingBlocksChunk([ThinkingBlock(type: "thinking", thinking: text, signature: signature)], into: &output)
            case .redactedThinking(let data):
                sendRoleIfNeeded(into: &output)
                encoder.thinkingBlocksChunk([ThinkingBlock(type: "redacted_thinking", data: data)], into: &output)
            default:
                break
            }
            blocks[index] = nil
        }

        // MARK: Output

        private mutating func finishMessage(into output: inout ByteBuffer) {
            for index in blocks.keys.sorted() {
                closeBlock(at: index, into: &output)
            }
            sendRoleIfNeeded(into: &output)
            encoder.finishChunk(AnthropicAdapter.finishReason(stopReason), into: &output)
            if clientWantsUsage {
                // Without reported usage the client still gets the chunk, with the
                // estimate the ledger records.
                let reported = usage ?? encoder.labels.estimatedUsage(contentChunks: contentChunks)
                usage = reported
                encoder.usageChunk(reported, into: &output)
            }
            encoder.done(into: &output)
            phase = .finished
        }

        private mutating func fail(_ error: OpenAIError, into output: inout ByteBuffer) {
            upstreamError = encoder.errorEvent(error, into: &output)
            phase = .failed
        }

        private mutating func sendRoleIfNeeded(into output: inout ByteBuffer) {
            guard !sentRole else { return }
            sentRole = true
            encoder.roleChunk(into: &output)
        }

        private mutating func sendContent(_ text: String, into output: inout ByteBuffer) {
            sendRoleIfNeeded(into: &output)
            encoder.contentChunk(text, into: &output)
            contentChunks += 1
        }

        private mutating func sendReasoning(_ text: String, into output: inout ByteBuffer) {
            sendRoleIfNeeded(into: &output)
            encoder.reasoningChunk(text, into: &output)
            contentChunks += 1
        }

        private mutating func mergeUsage(_ newer: AnthropicUsage) {
            reportedUsage = reportedUsage?.updated(with: newer) ?? newer
            usage = reportedUsage?.tokenUsage
        }
    }
}
