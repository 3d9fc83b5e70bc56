import FuzzSupport
import NIOCore
@testable import Providers

// Input: a flags byte (bit 0: the client asked for usage; bits 1–2: OpenAI, Azure or a
// self-hosted engine, whose quirks the relay fixes; bits 3–7: the response labels), a
// chunk plan (`FuzzInput.chunkPlan`), then the upstream's stream.
//
// The relay is built as `OpenAIAdapter.makeStreamTranslator` builds it. Checked: whole
// and re-chunked relays agree; the output is strict SSE; when every event the upstream
// sent was `[DONE]` or JSON, so is every event the client gets (the relay splices JSON
// and must never break it); and it adds at most the one `[DONE]` an engine may owe.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpenAIStream(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let plan = input.chunkPlan()
    let payload = input.rest

    let kinds: [ProviderKind] = [.openai, .azureOpenAI, .engine, .engine]
    let adapter = OpenAIAdapter(kind: kinds[Int(flags >> 1) & 3])
    let head = streamingHead(clientWantsUsage: flags & 1 == 1)
    let labels = responseLabels(flags >> 3)

    let (outcome, translator) = translateChunkingInvariant(payload, plan: plan) {
        adapter.makeStreamTranslator(head: head, labels: labels)
    }
    guard let relay = translator as? OpenAIStreamRelay else {
        invariant(false, "OpenAIAdapter made a \(type(of: translator)), not an OpenAIStreamRelay")
        return 0
    }

    checkUsage(outcome.usage)
    let sent = ReferenceSSE.events(payload)
    let received = StrictSSE.events(outcome.output)
    let sentDone = sent.filter(\.isDone).count
    let receivedDone = received.filter(\.isDone).count
    invariant(relay.sawDone == (sentDone > 0), "sawDone is \(relay.sawDone) for \(sentDone) [DONE] events")
    invariant(
        receivedDone == sentDone || (adapter.kind == .engine && sentDone == 0 && receivedDone == 1),
        "the client got \(receivedDone) [DONE] for \(sentDone) sent: \(describe(outcome.output))"
    )

    let allJSON = JSONOracle.readsAsUTF8(payload) && sent.allSatisfy { $0.isDone || JSONOracle.isValid($0.data) }
    if allJSON {
        for event in received where !event.isDone {
            invariant(JSONOracle.isValid(event.data), "the relay broke a JSON event: \(describe(event.data))\n  stream: \(describe(payload))")
        }
    }
    return 0
}
