import Foundation
import NIOCore
import Testing

@testable import Providers

// MARK: Fixtures

/// The recorded provider transcripts in `../shared/fixtures`, beside the package.
enum Fixtures {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ProvidersTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // the package root
        .appendingPathComponent("../shared/fixtures")
        .standardizedFileURL

    /// Switchyard's own fixtures, built from the providers' documentation where no
    /// recording exists (`Tests/Fixtures/README.md`).
    static let ownDirectory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // ProvidersTests
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures")
        .standardizedFileURL

    static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }

    /// The bytes of one of Switchyard's own fixtures.
    static func own(_ relativePath: String) throws -> [UInt8] {
        Array(try Data(contentsOf: ownDirectory.appendingPathComponent(relativePath)))
    }

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        Array(try Data(contentsOf: url(relativePath)))
    }

    /// The files of one fixture folder with the given extension, sorted by name.
    static func files(in folder: String, withExtension ext: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url(folder).path)
            .filter { $0.hasSuffix("." + ext) }
            .sorted()
            .map { "\(folder)/\($0)" }
    }

    /// The body of a recorded HTTP response: everything after the first blank line.
    static func httpBody(_ relativePath: String) throws -> [UInt8] {
        let bytes = try bytes(relativePath)
        let separator = Array("\n\n".utf8)
        let crlfSeparator = Array("\r\n\r\n".utf8)
        for index in bytes.indices {
            if bytes[index...].starts(with: crlfSeparator) { return Array(bytes[(index + 4)...]) }
            if bytes[index...].starts(with: separator) { return Array(bytes[(index + 2)...]) }
        }
        Issue.record("no blank line in \(relativePath)")
        return []
    }
}

// MARK: Chunking

/// A small deterministic linear congruential generator, so "random" chunkings are the
/// same on every run.
struct LCG: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    }

    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state ^ (state >> 29)
    }
}

/// Cuts `bytes` into chunks of pseudo-random sizes in `1...maximumChunk`.
func chunked(_ bytes: [UInt8], seed: UInt64, maximumChunk: Int = 48) -> [[UInt8]] {
    var generator = LCG(seed: seed)
    var chunks: [[UInt8]] = []
    var index = 0
    while index < bytes.count {
        let size = Int.random(in: 1...maximumChunk, using: &generator)
        let end = min(bytes.count, index + size)
        chunks.append(Array(bytes[index..<end]))
        index = end
    }
    return chunks
}

/// A buffer whose readable bytes are `bytes` but whose reader index is not zero, with
/// decoy bytes before and after, to catch code that ignores the reader index.
func offsetBuffer(_ bytes: [UInt8]) -> ByteBuffer {
    let decoy = Array(#"{"model":"decoy","stream":true}"#.utf8)
    var buffer = ByteBuffer()
    buffer.writeBytes(decoy)
    buffer.writeBytes(bytes)
    buffer.writeBytes(decoy)
    buffer.moveReaderIndex(forwardBy: decoy.count)
    buffer.moveWriterIndex(to: decoy.count + bytes.count)
    return buffer
}

// MARK: JSON

/// Parses JSON text with Foundation, as an independent check on what Switchyard writes.
func foundationJSON(_ bytes: [UInt8]) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
}

func foundationObject(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(try foundationJSON(bytes) as? [String: Any])
}

func foundationObject(_ buffer: ByteBuffer) throws -> [String: Any] {
    try foundationObject(Array(buffer.readableBytesView))
}

func bytes(_ buffer: ByteBuffer) -> [UInt8] {
    Array(buffer.readableBytesView)
}

func text(_ buffer: ByteBuffer) -> String {
    String(decoding: buffer.readableBytesView, as: UTF8.self)
}

/// Runs `body` with a scanner over the UTF-8 of `json`.
func withScanner<Result>(_ json: String, _ body: (JSONScanner) throws -> Result) rethrows -> Result {
    try Array(json.utf8).withUnsafeBytes { raw in try body(JSONScanner(raw)) }
}

// MARK: Public model names

/// `bytes` with every `"model":"…"` member naming `model` instead: what a client gets of
/// an upstream's text once Switchyard has put the public model in. A plain text
/// substitution, independent of the code under test.
func renamingModel(_ bytes: [UInt8], to model: String) -> [UInt8] {
    let text = String(decoding: bytes, as: UTF8.self)
    let expression = try! NSRegularExpression(pattern: #""model"(\s*):(\s*)"(?:[^"\\]|\\.)*""#)
    let replaced = expression.stringByReplacingMatches(
        in: text, range: NSRange(text.startIndex..., in: text),
        withTemplate: "\"model\"$1:$2\"" + NSRegularExpression.escapedTemplate(for: model) + "\""
    )
    return Array(replaced.utf8)
}
