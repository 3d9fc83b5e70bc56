import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Portal
import Providers

/// `/portal/…`: the web portal's files, for the browser. Every path under `/portal/` that
/// is not a file answers the portal's page, which routes in the browser; the files are at
/// `/portal/assets/<name>`. Each answer carries a strict Content-Security-Policy (nothing
/// but Switchyard's own origin: no inline script or style, no framing) and is revalidated
/// by its `ETag` on every load, so an upgrade shows at once.
struct PortalRoutes: Sendable {
    /// Where the files come from.
    enum Source: Sendable {
        /// Read once at start (the files shipped with Switchyard).
        case loaded(PortalFiles)
        /// Read from this folder on every request (`serve --portal-dir`, for working on the
        /// portal without rebuilding).
        case directory(URL)
        /// The files could not be found: the portal answers 503 saying why.
        case unavailable(String)
    }

    let source: Source

    /// The files `serve` uses: `directory` when given, else the shipped ones.
    static func source(directory: String?, logger: Logger) -> Source {
        if let directory {
            return .directory(URL(fileURLWithPath: directory, isDirectory: true))
        }
        do {
            return .loaded(try PortalFiles.bundled())
        } catch {
            logger.error("the portal is unavailable", metadata: ["reason": "\(error)"])
            return .unavailable("\(error)")
        }
    }

    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
        "connect-src 'self'", "font-src 'self'", "manifest-src 'self'", "form-action 'self'",
        "frame-ancestors 'none'", "base-uri 'none'",
    ].joined(separator: "; ")

    func addRoutes(to routes: KnownRoutes) {
        // `/portal` and `/portal/` are one route to the router; only the first is redirected.
        routes.get("portal") { request, _ in
            request.uri.path == "/portal" ? Self.redirectToPortal() : answer(PortalFiles.indexName, request: request)
        }
        routes.get("portal/assets/:file") { request, context in
            answer(context.parameters.get("file") ?? "", request: request)
        }
        routes.get("portal/**") { request, _ in
            answer(PortalFiles.indexName, request: request)
        }
    }

    private static func redirectToPortal() -> Response {
        var headers = securityHeaders
        headers[.location] = "/portal/"
        return Response(status: .permanentRedirect, headers: headers)
    }

    /// The file `name`, or 304 when the browser's copy is current; errors carry the same
    /// headers as files.
    private func answer(_ name: String, request: Request) -> Response {
        let file: PortalFiles.File
        do {
            file = try self.file(named: name)
        } catch {
            var response = (error as? OpenAIError ?? Self.notFound).response()
            for field in Self.securityHeaders { response.headers[field.name] = field.value }
            response.headers[.cacheControl] = "no-store"
            return response
        }
        var headers = Self.securityHeaders
        headers[.contentType] = file.contentType
        headers[.eTag] = file.etag
        // The page itself is never kept: a secret shown once must not come back with the
        // browser's Back button. Its scripts and styles are revalidated by their ETag.
        headers[.cacheControl] = name == PortalFiles.indexName ? "no-store" : "no-cache"
        if name != PortalFiles.indexName, let cached = request.headers[.ifNoneMatch], Self.matches(cached, etag: file.etag) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(file.bytes.count)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }

    private static let notFound = OpenAIError(
        status: 404, message: "The portal has no such file.", type: "invalid_request_error", code: "not_found"
    )

    private func file(named name: String) throws -> PortalFiles.File {
        switch source {
        case .loaded(let files):
            if let file = files.file(named: name) { return file }
        case .directory(let folder):
            // Only regular files directly in the folder: no subfolder, no link out of it.
            let url = folder.appendingPathComponent(name)
            if PortalFiles.isFileName(name),
               let attributes = try? FileManager.default.attributesOfItem(atPath: url.path),
               attributes[.type] as? FileAttributeType == .typeRegular {
                return try PortalFiles.read(url, name: name)
            }
        case .unavailable(let reason):
            throw OpenAIError(status: 503, message: "The portal is unavailable: \(reason).", type: "server_error", code: "portal_unavailable")
        }
        throw Self.notFound
    }

    /// Whether an `If-None-Match` value names `etag` (or is `*`); weak or strong alike.
    static func matches(_ header: String, etag: String) -> Bool {
        header.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == etag || tag == "W/" + etag
        }
    }

    /// What every portal answer carries.
    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy: contentSecurityPolicy,
        .xContentTypeOptions: "nosniff",
        .referrerPolicy: "no-referrer",
        .xFrameOptions: "DENY",
        .crossOriginOpenerPolicy: "same-origin",
        .permissionsPolicy: "camera=(), microphone=(), geolocation=(), payment=()",
    ]
}

extension HTTPField.Name {
    static let referrerPolicy = HTTPField.Name("referrer-policy")!
    static let xFrameOptions = HTTPField.Name("x-frame-options")!
    static let crossOriginOpenerPolicy = HTTPField.Name("cross-origin-opener-policy")!
    static let permissionsPolicy = HTTPField.Name("permissions-policy")!
}
