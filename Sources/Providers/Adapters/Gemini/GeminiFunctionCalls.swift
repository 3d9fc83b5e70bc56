import NIOCore

/// Turns Gemini's function calls, whole or streamed in pieces, into OpenAI tool calls.
///
/// A call comes whole (`name` and `args`), or, with streamed function-call arguments, as
/// a run of `functionCall` parts: the first names the function and says `willContinue`;
/// the next carry `partialArgs` (a JSON path and a typed value; a string value may itself
/// continue over several pieces); the call ends with a part whose `willContinue` is not
/// true, or with the stream. Each call becomes one tool call: a start (id and name), then
/// argument fragments whose concatenation is the JSON object the model meant.
///
/// A continuation that arrives with no call open names no function and is dropped: no
/// tool call goes out without a name.
struct GeminiFunctionCalls: Sendable {
    enum Event: Sendable, Equatable {
        case start(index: Int, id: String, name: String, arguments: String)
        case arguments(index: Int, fragment: String)
    }

    /// The calls opened so far.
    private(set) var count = 0
    /// The call whose arguments are still streaming: its index, name, Gemini's id, and
    /// its argument writer.
    private var open: (index: Int, name: String, id: String?, writer: PartialArgumentsWriter)?

    /// Feeds one `functionCall` part; returns what to send.
    mutating func receive(_ call: GeminiResponse.FunctionCall) -> [Event] {
        var events: [Event] = []
        if let name = call.name, !name.isEmpty, !continuesOpenCall(name: name, id: call.id) {
            close(into: &events)
            let index = count
            count += 1
            let id = call.id.flatMap { $0.isEmpty ? nil : $0 } ?? "call_\(index)"
            guard call.willContinue == true else {
                // A whole call: `args`, or pieces that all came in this one part.
                guard let pieces = call.partialArgs else {
                    events.append(.start(index: index, id: id, name: name, arguments: (call.args ?? .object([:])).jsonText))
                    return events
                }
                var writer = PartialArgumentsWriter()
                var arguments = writer.begin(with: call.args)
                for piece in pieces { arguments += writer.apply(piece) }
                arguments += writer.finish()
                events.append(.start(index: index, id: id, name: name, arguments: arguments))
                return events
            }
            var writer = PartialArgumentsWriter()
            events.append(.start(index: index, id: id, name: name, arguments: ""))
            let opening = writer.begin(with: call.args)
            if !opening.isEmpty { events.append(.arguments(index: index, fragment: opening)) }
            open = (index, name, call.id, writer)
        }
        guard var (index, name, id, writer) = open else { return events }
        var fragment = ""
        for piece in call.partialArgs ?? [] { fragment += writer.apply(piece) }
        if call.willContinue != true {
            fragment += writer.finish()
            open = nil
        } else {
            open = (index, name, id, writer)
        }
        if !fragment.isEmpty { events.append(.arguments(index: index, fragment: fragment)) }
        return events
    }

    /// Whether a part that names a function continues the call still open rather than
    /// starting one: the open call asked for more and this part names the same function
    /// (and no other id). A new call can only start once the open one ended.
    private func continuesOpenCall(name: String, id: String?) -> Bool {
        guard let open else { return false }
        return open.name == name && (id == nil || id == "" || open.id == nil || id == open.id)
    }

    /// The stream ended: a call still open is closed, its arguments completed.
    mutating func finish() -> [Event] {
        var events: [Event] = []
        close(into: &events)
        return events
    }

    private mutating func close(into events: inout [Event]) {
        guard var (index, _, _, writer) = open else { return }
        open = nil
        let rest = writer.finish()
        if !rest.isEmpty { events.append(.arguments(index: index, fragment: rest)) }
    }
}

/// Writes a JSON object as text, piece by piece, from values addressed by JSON paths
/// (`$.a.b[2].c`, `$['x.y']`), so that the text written so far is always a prefix of the
/// object and the whole text parses as the object the pieces describe.
///
/// Pieces arrive in document order. A piece that contradicts the kind of an open object
/// or array, or addresses an array element already written, cannot be written as a
/// prefix and is dropped; one that returns to an object member already closed is written
/// as that member again (JSON readers keep the last), so the text always parses.
struct PartialArgumentsWriter: Sendable {
    enum Step: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    private struct Container: Sendable {
        var isArray: Bool
        /// Members or elements written so far.
        var count: Int
        /// The key or index of the member now being written, for matching later paths.
        var current: Step?
    }

    /// The most elements a piece may skip (written as `null`).
    static let longestGap = 64

    /// The open containers, the root object first; empty before anything was written.
    private var containers: [Container] = []
    /// The path of a string value left open by a piece that continues.
    private var openString: [Step]?
    private var started = false

    /// Opens the object; whole `args` that came with the first part are not expected
    /// with streamed arguments, and are written as the first members if they do.
    mutating func begin(with args: JSONValue?) -> String {
        guard case .object(let members)? = args, !members.isEmpty else { return "" }
        var text = ""
        for (key, value) in members.sorted(by: { $0.key < $1.key }) {
            text += write(path: [.key(key)], value: value.jsonText, continues: false, isString: false, rawString: nil)
        }
        return text
    }

    /// Writes one piece; returns the text it adds.
    mutating func apply(_ piece: GeminiResponse.PartialArg) -> String {
        guard let path = piece.jsonPath.flatMap(Self.parse), !path.isEmpty else { return "" }
        let continues = piece.willContinue == true
        if let string = piece.stringValue {
            return write(path: path, value: "", continues: continues, isString: true, rawString: string)
        }
        let value: String
        if let number = piece.numberValue {
            value = JSONValue.number(number).jsonText
        } else if let bool = piece.boolValue {
            value = bool ? "true" : "false"
        } else if piece.nullValue != nil {
            value = "null"
        } else if let structured = piece.structValue ?? piece.listValue {
            value = structured.jsonText
        } else {
            return ""
        }
        return write(path: path, value: value, continues: false, isString: false, rawString: nil)
    }

    /// Closes what is open; returns the closing text (`{}` when nothing was written).
    mutating func finish() -> String {
        var text = ""
        if !started { return "{}" }
        if openString != nil {
            text += "\""
            openString = nil
        }
        while let container = containers.popLast() {
            text += container.isArray ? "]" : "}"
        }
        return text
    }

    private mutating func write(path: [Step], value: String, continues: Bool, isString: Bool, rawString: String?) -> String {
        var text = ""
        if let open = openString {
            if isString, open == path, let rawString {
                text += Self.escaped(rawString)
                if !continues {
                    text += "\""
                    openString = nil
                }
                return text
            }
            text += "\""
            openString = nil
        }
        if !started {
            started = true
            containers = [Container(isArray: false, count: 0, current: nil)]
            text += "{"
        }
        // The open containers below the root stand for a prefix of some path: keep the
        // part shared with this one, close the rest.
        var shared = 0
        while shared < containers.count - 1, shared < path.count - 1, containers[shared].current == path[shared] {
            shared += 1
        }
        var closing = ""
        var kept = containers
        while kept.count > shared + 1 {
            let container = kept.removeLast()
            closing += container.isArray ? "]" : "}"
        }
        // Open the containers down to the value's parent, then write the value.
        var opening = ""
        for depth in shared..<path.count {
            let step = path[depth]
            var parent = kept[kept.count - 1]
            switch step {
            case .key(let key):
                guard !parent.isArray else { return text }
                if parent.count > 0 { opening += "," }
                opening += Self.quoted(key) + ":"
            case .index(let index):
                // Elements go in order; a gap beyond a few is no stream of arguments.
                guard parent.isArray, index >= parent.count, index - parent.count <= Self.longestGap else { return text }
                if parent.count > 0 { opening += "," }
                // Elements the pieces skipped are null.
                for _ in parent.count..<index { opening += "null," }
                parent.count = index
            }
            parent.count += 1
            parent.current = step
            kept[kept.count - 1] = parent
            if depth < path.count - 1 {
                let isArray: Bool
                if case .index = path[depth + 1] { isArray = true } else { isArray = false }
                opening += isArray ? "[" : "{"
                kept.append(Container(isArray: isArray, count: 0, current: nil))
            }
        }
        containers = kept
        text += closing + opening
        if isString, let rawString {
            text += "\"" + Self.escaped(rawString)
            if continues { openString = path } else { text += "\"" }
        } else {
            text += value
        }
        return text
    }

    // MARK: Paths

    /// Parses `$.a.b[0]['c.d']`; nil for anything else.
    static func parse(_ path: String) -> [Step]? {
        var characters = Substring(path)
        guard characters.first == "$" else { return nil }
        characters = characters.dropFirst()
        var steps: [Step] = []
        while let first = characters.first {
            if first == "." {
                characters = characters.dropFirst()
                let name = characters.prefix { $0 != "." && $0 != "[" }
                guard !name.isEmpty else { return nil }
                steps.append(.key(String(name)))
                characters = characters.dropFirst(name.count)
            } else if first == "[" {
                characters = characters.dropFirst()
                if let quote = characters.first, quote == "'" || quote == "\"" {
                    characters = characters.dropFirst()
                    guard let end = characters.firstIndex(of: quote) else { return nil }
                    steps.append(.key(String(characters[..<end])))
                    characters = characters[characters.index(after: end)...]
                    guard characters.first == "]" else { return nil }
                    characters = characters.dropFirst()
                } else {
                    let digits = characters.prefix { $0.isASCII && $0.isNumber }
                    guard let index = Int(digits), index < 1 << 16, characters.dropFirst(digits.count).first == "]" else {
                        return nil
                    }
                    steps.append(.index(index))
                    characters = characters.dropFirst(digits.count + 1)
                }
            } else {
                return nil
            }
        }
        return steps
    }

    private static func quoted(_ text: String) -> String {
        "\"" + escaped(text) + "\""
    }

    /// The JSON escaping of a string's content, without quotes: Switchyard's one JSON
    /// string writer, less its quotes.
    static func escaped(_ text: String) -> String {
        String(decoding: [UInt8].jsonString(text).dropFirst().dropLast(), as: UTF8.self)
    }
}
