import Foundation

/// The portal's static files (HTML, CSS, JavaScript, an icon), shipped as the `Portal`
/// target's resources: read once into memory, each with its content type and an `ETag`.
///
/// The portal is a thin client of the management and inference APIs: these files are
/// all of it, and nothing in them is fetched from anywhere but Switchyard itself.
public struct PortalFiles: Sendable {
    /// One file, ready to answer.
    public struct File: Sendable {
        public let bytes: [UInt8]
        public let contentType: String
        /// A strong validator of the bytes, quoted as the header carries it.
        public let etag: String
    }

    /// The page every portal path that is not a file answers (the portal routes in the browser).
    public static let indexName = "index.html"

    private let files: [String: File]

    /// The files shipped with Switchyard: the `Switchyard_Portal.resources` folder that
    /// `swift build` puts beside the binary, else (a binary copied out of its build) the
    /// package's own `Sources/Portal/Resources`. Unlike `Bundle.module`, a binary with
    /// neither says so instead of stopping.
    public static func bundled() throws -> PortalFiles {
        let folders = [
            Bundle.main.bundleURL.appendingPathComponent("Switchyard_Portal.resources/Resources", isDirectory: true),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources", isDirectory: true),
        ]
        for folder in folders where FileManager.default.fileExists(atPath: folder.appendingPathComponent(indexName).path) {
            return try PortalFiles(directory: folder)
        }
        throw PortalError.missing(path: folders[0].path)
    }

    /// Every file of `directory` (not its subfolders, nor hidden files).
    public init(directory: URL) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw PortalError.missing(path: directory.path)
        }
        var files: [String: File] = [:]
        for name in names where Self.isFileName(name) {
            let url = directory.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            files[name] = try Self.read(url, name: name)
        }
        guard files[Self.indexName] != nil else { throw PortalError.missing(path: directory.appendingPathComponent(Self.indexName).path) }
        self.files = files
    }

    /// The file called `name`, if the portal has it.
    public func file(named name: String) -> File? {
        files[name]
    }

    /// The names of every file, sorted.
    public var names: [String] {
        files.keys.sorted()
    }

    /// Whether `name` can name a portal file: letters, digits, `.`, `-` and `_`, not
    /// starting with a dot; so no path can climb out of the folder.
    public static func isFileName(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, first != UInt8(ascii: "."), name.utf8.count <= 128 else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                true
            default:
                false
            }
        }
    }

    public static func isFileName(_ name: String) -> Bool {
        isFileName(name[...])
    }

    /// Reads one file from disk (for `serve --portal-dir`, which reads on every request).
    public static func read(_ url: URL, name: String) throws -> File {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: url))
        } catch {
            throw PortalError.missing(path: url.path)
        }
        return File(bytes: bytes, contentType: contentType(of: name), etag: etag(of: bytes))
    }

    /// The media type by the file's extension; unknown ones are plain bytes.
    static func contentType(of name: String) -> String {
        switch name.split(separator: ".").last.map({ $0.lowercased() }) {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "json": "application/json"
        case "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }

    /// FNV-1a over the bytes, with their count: a validator, not a secret.
    static func etag(of bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return "\"\(String(hash, radix: 16))-\(String(bytes.count, radix: 16))\""
    }
}

/// The portal's files are not where they should be.
public enum PortalError: Error, CustomStringConvertible {
    case missing(path: String)

    public var description: String {
        switch self {
        case .missing(let path):
            "the portal's files are missing (\(path)); install the binary with the Switchyard_Portal.resources folder built beside it, or point --portal-dir at them"
        }
    }
}
