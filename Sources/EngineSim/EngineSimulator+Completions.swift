import Hummingbird

// MARK: - Routes

extension EngineSimulator {
    /// `POST /v1/chat/completions`.
    func chatCompletions(_ request: Request, context: EngineRequestContext) async throws -> Response {
        var request = request
        let body = try await context.decodeBody(ChatCompletionRequest.self, from: &request)
        guard let messages = body.messages else {
            throw EngineError.invalidRequest("Missing required parameter: 'messages'.", param: "messages", code: "missing_required_parameter")
        }
        guard !messages.isEmpty else {
            throw EngineError.invalidRequest("'messages' must contain at least one message.", param: "messages", code: "empty_array")
        }
        let generation = Generation(
            prompt: body.promptDigest(),
            requestedTokens: body.maxCompletionTokens ?? body.maxTokens,
            defaultMaxTokens: configuration.defaultMaxTokens
        )
        let renderer = CompletionRenderer(
            kind: .chat,
            id: Self.responseID(prefix: "chatcmpl-"),
            created: Self.unixTime(),
            model: body.model ?? Self.servedModelName,
            includeUsage: body.streamOptions?.includeUsage ?? false
        )
        return try await respond(with: generation, renderer: renderer, stream: body.stream ?? false, request: request)
    }

    /// `POST /v1/completions`. A batch of prompts is answered as one completion of them all.
    func completions(_ request: Request, context: EngineRequestContext) async throws -> Response {
        var request = request
        let body = try await context.decodeBody(TextCompletionRequest.self, from: &request)
        guard let prompt = body.prompt else {
            throw EngineError.invalidRequest("Missing required parameter: 'prompt'.", param: "prompt", code: "missing_required_parameter")
        }
        let generation = Generation(
            prompt: prompt.combinedDigest(),
            requestedTokens: body.maxTokens,
            defaultMaxTokens: configuration.defaultMaxTokens
        )
        let renderer = CompletionRenderer(
            kind: .text,
            id: Self.responseID(prefix: "cmpl-"),
            created: Self.unixTime(),
            model: body.model ?? Self.servedModelName,
            includeUsage: body.streamOptions?.includeUsage ?? false
        )
        return try await respond(with: generation, renderer: renderer, stream: body.stream ?? false, request: request)
    }
}

// MARK: - Generating

extension EngineSimulator {
    static let eventStreamHeaders: HTTPFields = [
        .contentType: "text/event-stream",
        .cacheControl: "no-cache",
    ]

    /// Runs a generation in a slot and answers with the whole completion or a stream of it.
    ///
    /// Like vLLM, a whole completion is abandoned when its client closes the connection
    /// while it is being generated, and its slot freed.
    func respond(with generation: Generation, renderer: CompletionRenderer, stream: Bool, request: Request) async throws -> Response {
        if stream {
            // The slot is taken inside the body writer, so it is held exactly as long as the
            // stream is being written and released however the writing ends.
            return Response(
                status: .ok,
                headers: Self.eventStreamHeaders,
                body: ResponseBody { writer in
                    try await self.writeStream(of: generation, renderer: renderer, to: &writer)
                }
            )
        }
        let completion = pacer.completionOffset(tokenCount: generation.completionTokens)
        guard completion > .zero else { return try await generateWhole(generation, renderer: renderer, taking: .zero) }
        // Watching for the close ends the connection's reuse, so it is done only when
        // there is a wait to give up, and the answer says so: a client that pooled the
        // connection would otherwise send its next request into the close.
        var response = try await request.body.consumeWithCancellationOnInboundClose { _ in
            try await generateWhole(generation, renderer: renderer, taking: completion)
        }
        response.headers[.connection] = "close"
        return response
    }

    private func generateWhole(_ generation: Generation, renderer: CompletionRenderer, taking completion: Duration) async throws -> Response {
        try await slotQueue.acquire()
        do {
            if completion > .zero {
                try await Task.sleep(until: .now + completion, clock: .continuous)
            }
        } catch {
            await finish(generation, generatedTokens: 0)
            throw error
        }
        await finish(generation, generatedTokens: generation.completionTokens)
        var json = ""
        renderer.writeResponse(generation, into: &json)
        return Self.jsonResponse(json)
    }

    /// Writes the SSE stream of a generation, pacing tokens, and frees the slot at the end.
    ///
    /// A client that goes away makes `writer.write` throw at the next token, which ends the
    /// generation there; the tokens already produced are still counted.
    func writeStream(
        of generation: Generation,
        renderer: CompletionRenderer,
        to writer: inout any ResponseBodyWriter
    ) async throws {
        try await slotQueue.acquire()
        let start = ContinuousClock.now
        var generated = 0
        do {
            var pending = ""
            pending.reserveCapacity(4096)
            for (index, tokenID) in generation.tokenIDs.enumerated() {
                if let offset = pacer.offset(ofToken: index) {
                    // Whatever is ready goes out before waiting, so the client sees each
                    // token when it is due rather than in bursts.
                    if !pending.isEmpty {
                        try await writer.write(ByteBuffer(string: pending))
                        pending.removeAll(keepingCapacity: true)
                    }
                    try await Task.sleep(until: start + offset, clock: .continuous)
                }
                if index == 0 {
                    renderer.writeFirstChunk(into: &pending)
                }
                renderer.writeTokenChunk(tokenID, into: &pending)
                generated += 1
                // Unpaced, tokens are batched into few writes: benchmarks measure the proxy, not this.
                if pending.utf8.count >= 16 * 1024 {
                    try await writer.write(ByteBuffer(string: pending))
                    pending.removeAll(keepingCapacity: true)
                }
            }
            renderer.writeFinishChunk(generation.finishReason, into: &pending)
            renderer.writeEnd(generation, into: &pending)
            try await writer.write(ByteBuffer(string: pending))
            try await writer.finish(nil)
        } catch {
            await finish(generation, generatedTokens: generated)
            throw error
        }
        await finish(generation, generatedTokens: generated)
    }

    /// Frees the slot and counts the request's tokens.
    func finish(_ generation: Generation, generatedTokens: Int) async {
        await slotQueue.release()
        await metrics.record(promptTokens: generation.promptTokens, generationTokens: generatedTokens)
    }
}
