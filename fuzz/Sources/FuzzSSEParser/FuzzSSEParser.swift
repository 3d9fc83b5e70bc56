import FuzzSupport
import NIOCore
import Providers

// Input: a chunk plan (`FuzzInput.chunkPlan`), then the stream's bytes.
//
// The events must not depend on where the stream is cut (mid-line, mid-CRLF, mid-BOM,
// empty chunks), and must be those of an independent whole-stream reading.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSSEParser(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let plan = input.chunkPlan()
    let payload = input.rest

    var whole = SSEParser()
    var wholeEvents = whole.feed(tailAlignedBuffer(payload))
    let wholeOpen = wholeEvents.count
    if let last = whole.finish() { wholeEvents.append(last) }

    var chunked = SSEParser()
    var chunkedEvents: [SSEEvent] = []
    for range in plan.chunks(count: payload.count) {
        chunkedEvents += chunked.feed(tailAlignedBuffer(UnsafeRawBufferPointer(rebasing: payload[range])))
    }
    // Before `finish`, the events delivered can only be fewer by the one left open.
    invariant(
        chunkedEvents.count == wholeOpen && chunkedEvents.elementsEqual(wholeEvents.prefix(wholeOpen)),
        "re-chunking (sizes \(plan.sizes)) changed the events fed so far"
    )
    if let last = chunked.finish() { chunkedEvents.append(last) }
    invariant(chunkedEvents == wholeEvents, "re-chunking (sizes \(plan.sizes)) changed the events: \(describe(payload))")

    let reference = ReferenceSSE.events(payload)
    invariant(
        wholeEvents == reference,
        "SSEParser and the reference reading disagree on \(describe(payload)):\n  parser:    \(wholeEvents)\n  reference: \(reference)"
    )

    // `finish` ends the stream: a parser that finished has nothing more to give.
    invariant(whole.finish() == nil, "a second finish delivered an event")
    return 0
}
