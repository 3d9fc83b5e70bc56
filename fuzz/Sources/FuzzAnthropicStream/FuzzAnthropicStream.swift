import FuzzSupport
import NIOCore
import Providers

// Input: a flags byte (bit 0: the client asked for usage; bits 1–7: the response labels),
// a chunk plan (`FuzzInput.chunkPlan`), then the upstream's Messages stream.
//
// The translator is built as `AnthropicAdapter.makeStreamTranslator` builds it. Checked:
// whole and re-chunked translations agree; the output is strict SSE whose every `data:`
// is `[DONE]` or a JSON object, ending in exactly one `[DONE]` or error, whatever came in.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAnthropicStream(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let plan = input.chunkPlan()
    let payload = input.rest

    let adapter = AnthropicAdapter()
    let head = streamingHead(clientWantsUsage: flags & 1 == 1)
    let labels = responseLabels(flags >> 1)
    let (outcome, _) = translateChunkingInvariant(payload, plan: plan) {
        adapter.makeStreamTranslator(head: head, labels: labels)
    }
    checkTranslatedStream(outcome)
    return 0
}
