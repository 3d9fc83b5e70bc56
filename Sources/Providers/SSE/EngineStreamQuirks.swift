import NIOCore

/// What one self-hosted engine's stream has shown so far, and the edits that make each of
/// its chunks read as OpenAI's. A value-type state machine driven by `OpenAIStreamRelay`.
///
/// The quirks, by engine:
/// - TGI sends `"id":""`; the response labels' id stands in.
/// - TGI repeats `"role"`, and the tool call's `"id"`, `"type"` and `"name":null`, on every
///   delta; SDKs concatenate repeated strings, so only the first of each goes through.
/// - vLLM may omit a tool call's `id`; one is invented, unique in the stream.
/// - TGI ends a tool call with `finish_reason: "stop"`, or with no finish chunk at all.
/// - llama.cpp and TGI put usage on the chunk that carries `finish_reason`; a client that
///   asked for usage gets it as OpenAI's separate usage chunk before `[DONE]`.
/// - ik_llama.cpp never sends `[DONE]`.
///
/// `content:null`, `reasoning_content`, `timings` and build-id `system_fingerprint`s are
/// harmless to the SDKs and go through untouched.
struct EngineStreamQuirks: Sendable {
    /// What went by for one choice.
    private struct Choice: Sendable {
        var sentRole = false
        var finished = false
        var madeToolCalls = false
        /// Chunks of legacy completions carry `text`, not `delta`.
        var usesDelta = false
        /// Tool calls already opened (their id sent), by index, and whether their name went out.
        var toolCalls: [Int: Bool] = [:]
    }

    private let labelID: [UInt8]
    private var choices: [Int: Choice] = [:]
    private var inventedToolCallIDs = 0
    /// Raw JSON values of the latest chunk's head, for the chunks added to the stream.
    private var id: [UInt8]
    private var object: [UInt8] = Array(#""chat.completion.chunk""#.utf8)
    private var created: [UInt8]
    /// The public model: the relay rewrites every chunk's `model` to it.
    private let model: [UInt8]
    /// Usage that rode on a chunk with choices, owed as a usage chunk before `[DONE]`.
    private var deferredUsage: [UInt8]?

    init(labels: ResponseLabels) {
        labelID = [UInt8].jsonString(labels.id)
        id = labelID
        created = Array(String(labels.created).utf8)
        model = [UInt8].jsonString(labels.model)
    }

    /// Whether every choice that appeared has finished, so an end without `[DONE]` is a
    /// complete answer rather than a cut-off one.
    var completed: Bool {
        !choices.isEmpty && choices.values.allSatisfy(\.finished)
    }

    // MARK: Chunks

    /// Records one chunk and adds the edits that make it OpenAI's.
    ///
    /// - Parameters:
    ///   - members: the chunk's top-level members.
    ///   - edits: collects the edits; the caller applies them.
    mutating func normalise(_ members: [JSONScanner.Member], scanner: JSONScanner, edits: inout JSONEdits) {
        for member in members {
            if scanner.key(member, equals: "id") {
                if scanner.isNullOrEmptyString(at: member.value) {
                    edits.replace(member.value, with: labelID)
                    id = labelID
                } else {
                    id = scanner.raw(member.value)
                }
            } else if scanner.key(member, equals: "object"), !scanner.isNullOrEmptyString(at: member.value) {
                object = scanner.raw(member.value)
            } else if scanner.key(member, equals: "created"), scanner.integer(at: member.value) != nil {
                created = scanner.raw(member.value)
            } else if scanner.key(member, equals: "choices"), scanner.kind(at: member.value.lowerBound) == .array {
                guard let elements = try? scanner.elements(ofArrayAt: member.value) else { continue }
                for (position, element) in elements.enumerated() {
                    normaliseChoice(at: element, position: position, scanner: scanner, edits: &edits)
                }
            }
        }
    }

    /// Keeps `usage` (raw JSON) for a usage chunk of its own before `[DONE]`; the caller
    /// cuts it from the chunk it rode on. Call after `normalise` for that chunk.
    mutating func deferUsage(_ usage: [UInt8]) {
        // Line breaks can only be whitespace between JSON tokens here, and must not end
        // the `data:` line of the added chunk.
        deferredUsage = usage.map { $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }
    }

    /// The upstream sent a usage chunk of its own, which supersedes any deferred usage.
    mutating func upstreamSentUsageChunk() {
        deferredUsage = nil
    }

    /// The events owed before `[DONE]`: a finish chunk for choices that never got one
    /// (TGI tool calls), then the deferred usage chunk.
    mutating func closingEvents(into output: inout ByteBuffer) {
        let open = choices.filter { !$0.value.finished }.sorted { $0.key < $1.key }
        if !open.isEmpty {
            var choicesJSON: [UInt8] = [UInt8(ascii: "[")]
            for (position, (index, choice)) in open.enumerated() {
                if position > 0 { choicesJSON.append(UInt8(ascii: ",")) }
                let reason = choice.madeToolCalls ? "tool_calls" : "stop"
                let body = choice.usesDelta ? #""delta":{}"# : #""text":"""#
                choicesJSON += Array(#"{"index":\#(index),\#(body),"finish_reason":"\#(reason)"}"#.utf8)
                choices[index]?.finished = true
            }
            choicesJSON.append(UInt8(ascii: "]"))
            writeChunk(choices: choicesJSON, usage: nil, into: &output)
        }
        if let usage = deferredUsage {
            writeChunk(choices: Array("[]".utf8), usage: usage, into: &output)
            deferredUsage = nil
        }
    }

    // MARK: Choices and tool calls

    private mutating func normaliseChoice(at range: Range<Int>, position: Int, scanner: JSONScanner, edits: inout JSONEdits) {
        guard scanner.kind(at: range.lowerBound) == .object,
              let members = try? scanner.members(ofObjectAt: range)
        else { return }
        let index = members.first { scanner.key($0, equals: "index") }.flatMap { scanner.integer(at: $0.value) } ?? position
        var choice = choices[index] ?? Choice()
        var finishReason: JSONScanner.Member?
        for member in members {
            if scanner.key(member, equals: "delta"), scanner.kind(at: member.value.lowerBound) == .object {
                choice.usesDelta = true
                normaliseDelta(at: member.value, choice: &choice, scanner: scanner, edits: &edits)
            } else if scanner.key(member, equals: "finish_reason"), !scanner.isNull(at: member.value) {
                finishReason = member
            }
        }
        if let finishReason {
            choice.finished = true
            if choice.madeToolCalls, scanner.isString(at: finishReason.value, "stop") {
                edits.replace(finishReason.value, with: Array(#""tool_calls""#.utf8))
            }
        }
        choices[index] = choice
    }

    private mutating func normaliseDelta(at range: Range<Int>, choice: inout Choice, scanner: JSONScanner, edits: inout JSONEdits) {
        guard let members = try? scanner.members(ofObjectAt: range) else { return }
        var cut = [Bool](repeating: false, count: members.count)
        for (position, member) in members.enumerated() {
            if scanner.key(member, equals: "role"), !scanner.isNull(at: member.value) {
                cut[position] = choice.sentRole
                choice.sentRole = true
            } else if scanner.key(member, equals: "tool_calls"), scanner.kind(at: member.value.lowerBound) == .array {
                guard let calls = try? scanner.elements(ofArrayAt: member.value) else { continue }
                for (callPosition, call) in calls.enumerated() {
                    normaliseToolCall(at: call, position: callPosition, choice: &choice, scanner: scanner, edits: &edits)
                }
            }
        }
        edits.removeMembers(of: members) { cut[$0] }
    }

    /// The first delta of a tool call keeps (or gets) its id, `"type":"function"` and its
    /// name; later ones keep only `index` and the arguments.
    private mutating func normaliseToolCall(at range: Range<Int>, position: Int, choice: inout Choice, scanner: JSONScanner, edits: inout JSONEdits) {
        guard scanner.kind(at: range.lowerBound) == .object,
              let members = try? scanner.members(ofObjectAt: range)
        else { return }
        choice.madeToolCalls = true
        let index = members.first { scanner.key($0, equals: "index") }.flatMap { scanner.integer(at: $0.value) } ?? position
        let opened = choice.toolCalls[index] != nil
        var nameSent = choice.toolCalls[index] ?? false
        var cut = [Bool](repeating: false, count: members.count)
        var hasID = false
        var hasType = false
        for (memberPosition, member) in members.enumerated() {
            if scanner.key(member, equals: "id") {
                if opened {
                    cut[memberPosition] = true
                } else if scanner.isNullOrEmptyString(at: member.value) {
                    edits.replace(member.value, with: inventToolCallID())
                    hasID = true
                } else {
                    hasID = true
                }
            } else if scanner.key(member, equals: "type") {
                if opened {
                    cut[memberPosition] = true
                } else if scanner.isNull(at: member.value) {
                    edits.replace(member.value, with: Array(#""function""#.utf8))
                    hasType = true
                } else {
                    hasType = true
                }
            } else if scanner.key(member, equals: "function"), scanner.kind(at: member.value.lowerBound) == .object {
                normaliseFunction(at: member.value, nameSent: &nameSent, scanner: scanner, edits: &edits)
            }
        }
        if !opened, !hasID || !hasType {
            var missing: [UInt8] = []
            if !hasID { missing += Array(#""id":"#.utf8) + inventToolCallID() }
            if !hasID, !hasType { missing.append(UInt8(ascii: ",")) }
            if !hasType { missing += Array(#""type":"function""#.utf8) }
            edits.insertFirstMember(missing, intoObjectAt: range, members: members)
        }
        edits.removeMembers(of: members) { cut[$0] }
        choice.toolCalls[index] = nameSent
    }

    private func normaliseFunction(at range: Range<Int>, nameSent: inout Bool, scanner: JSONScanner, edits: inout JSONEdits) {
        guard let members = try? scanner.members(ofObjectAt: range) else { return }
        var cut = [Bool](repeating: false, count: members.count)
        for (position, member) in members.enumerated() where scanner.key(member, equals: "name") {
            if nameSent || scanner.isNull(at: member.value) {
                cut[position] = true
            } else {
                nameSent = true
            }
        }
        edits.removeMembers(of: members) { cut[$0] }
    }

    // MARK: Writing

    private mutating func inventToolCallID() -> [UInt8] {
        defer { inventedToolCallIDs += 1 }
        return Array(#""call_\#(inventedToolCallIDs)""#.utf8)
    }

    private func writeChunk(choices: [UInt8], usage: [UInt8]?, into output: inout ByteBuffer) {
        output.writeStaticString(#"data: {"id":"#)
        output.writeBytes(id)
        output.writeStaticString(#","object":"#)
        output.writeBytes(object)
        output.writeStaticString(#","created":"#)
        output.writeBytes(created)
        output.writeStaticString(#","model":"#)
        output.writeBytes(model)
        output.writeStaticString(#","choices":"#)
        output.writeBytes(choices)
        if let usage {
            output.writeStaticString(#","usage":"#)
            output.writeBytes(usage)
        }
        output.writeStaticString("}\n\n")
    }

}
