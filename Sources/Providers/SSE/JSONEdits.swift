/// Byte-range edits to one JSON text, made while scanning it and applied in one pass
/// while copying it out, so a chunk that needs a few fixes is spliced, not re-encoded.
///
/// Edits must not overlap; an insertion is an edit of an empty range.
struct JSONEdits: Sendable {
    struct Edit: Sendable, Equatable {
        var range: Range<Int>
        var replacement: [UInt8]
    }

    private(set) var edits: [Edit] = []

    var isEmpty: Bool { edits.isEmpty }

    mutating func replace(_ range: Range<Int>, with replacement: [UInt8]) {
        edits.append(Edit(range: range, replacement: replacement))
    }

    mutating func remove(_ range: Range<Int>) {
        edits.append(Edit(range: range, replacement: []))
    }

    mutating func insert(_ bytes: [UInt8], at offset: Int) {
        edits.append(Edit(range: offset..<offset, replacement: bytes))
    }

    /// Removes the members of one object for which `remove` is true, with the commas
    /// between them, leaving valid JSON.
    ///
    /// - Parameters:
    ///   - members: all the members of the object, in order.
    ///   - remove: whether the member at an offset into `members` goes.
    mutating func removeMembers(of members: [JSONScanner.Member], where remove: (Int) -> Bool) {
        // Runs of removed members are cut as one range each: from the run's first member
        // to the next kept member, or, for a run that ends the object, from the end of
        // the kept member before it. Cutting member by member would cut a shared comma twice.
        var position = 0
        while position < members.count {
            guard remove(position) else {
                position += 1
                continue
            }
            var end = position
            while end + 1 < members.count, remove(end + 1) { end += 1 }
            if end + 1 < members.count {
                self.remove(members[position].whole.lowerBound..<members[end + 1].whole.lowerBound)
            } else if position > 0 {
                self.remove(members[position - 1].whole.upperBound..<members[end].whole.upperBound)
            } else {
                self.remove(members[position].whole.lowerBound..<members[end].whole.upperBound)
            }
            position = end + 1
        }
    }

    /// Inserts `member` (`"key":value`, already JSON) as the first member of the object
    /// whose bytes are `object`, which has `members`.
    mutating func insertFirstMember(_ member: [UInt8], intoObjectAt object: Range<Int>, members: [JSONScanner.Member]) {
        if let first = members.first {
            insert(member + [UInt8(ascii: ",")], at: first.whole.lowerBound)
        } else {
            insert(member, at: object.lowerBound + 1)
        }
    }

    /// Copies `data` with the edits made, handing each piece to `write` in order.
    func apply(to data: [UInt8], _ write: (ArraySlice<UInt8>) -> Void) {
        // A stable sort with insertions first at equal offsets, so an insertion before a
        // member that is also cut lands in front of the cut.
        let ordered = edits.enumerated().sorted { left, right in
            if left.element.range.lowerBound != right.element.range.lowerBound {
                return left.element.range.lowerBound < right.element.range.lowerBound
            }
            if left.element.range.isEmpty != right.element.range.isEmpty { return left.element.range.isEmpty }
            return left.offset < right.offset
        }
        var position = data.startIndex
        for (_, edit) in ordered {
            assert(edit.range.lowerBound >= position, "overlapping JSON edits")
            let start = max(position, edit.range.lowerBound)
            write(data[position..<start])
            write(edit.replacement[...])
            position = max(position, edit.range.upperBound)
        }
        write(data[position...])
    }

    /// The edited text as one array.
    func applied(to data: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(data.count + 32)
        apply(to: data) { result.append(contentsOf: $0) }
        return result
    }
}

extension JSONScanner {
    /// The byte ranges of the elements of the (already validated) array whose bytes are `range`.
    func elements(ofArrayAt range: Range<Int>) throws(JSONScanError) -> [Range<Int>] {
        guard range.lowerBound < bytes.count, bytes[range.lowerBound] == UInt8(ascii: "[") else {
            throw JSONScanError(.unexpectedCharacter, offset: range.lowerBound)
        }
        var index = skipWhitespace(from: range.lowerBound + 1)
        guard index < range.upperBound else { throw JSONScanError(.unexpectedEnd, offset: index) }
        if bytes[index] == UInt8(ascii: "]") { return [] }
        var elements: [Range<Int>] = []
        while true {
            let start = index
            index = try scanValue(from: index, depth: 1)
            elements.append(start..<index)
            index = skipWhitespace(from: index)
            guard index < range.upperBound else { throw JSONScanError(.unexpectedEnd, offset: index) }
            if bytes[index] == UInt8(ascii: "]") { return elements }
            guard bytes[index] == UInt8(ascii: ",") else { throw JSONScanError(.unexpectedCharacter, offset: index) }
            index = skipWhitespace(from: index + 1)
        }
    }

    /// Whether the value at `range` is `null` or the empty string.
    func isNullOrEmptyString(at range: Range<Int>) -> Bool {
        isNull(at: range) || (range.count == 2 && bytes[range.lowerBound] == UInt8(ascii: "\""))
    }

    /// Whether the value at `range` is the string `text` as written (no escapes).
    func isString(at range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount + 2, bytes[range.lowerBound] == UInt8(ascii: "\"") else { return false }
        let start = text.utf8Start
        for offset in 0..<text.utf8CodeUnitCount where bytes[range.lowerBound + 1 + offset] != start[offset] {
            return false
        }
        return true
    }

    /// The raw bytes of the value at `range`.
    func raw(_ range: Range<Int>) -> [UInt8] {
        Array(bytes[range])
    }
}
