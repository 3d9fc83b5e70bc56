import Foundation
@testable import Portal
import Testing

@testable import Proxy

@Suite("The portal's files")
struct PortalFilesTests {
    @Test func theShippedFilesLoadWithTypesAndValidators() throws {
        let files = try PortalFiles.bundled()
        let index = try #require(files.file(named: PortalFiles.indexName))
        #expect(index.contentType == "text/html; charset=utf-8")
        #expect(files.file(named: "app.js")?.contentType == "text/javascript; charset=utf-8")
        #expect(files.file(named: "portal.css")?.contentType == "text/css; charset=utf-8")
        #expect(index.etag.hasPrefix("\"") && index.etag.hasSuffix("\""))
        // Every file the page names is shipped.
        let page = String(decoding: index.bytes, as: UTF8.self)
        for match in page.matches(of: /\/portal\/assets\/([A-Za-z0-9._-]+)/) {
            #expect(files.file(named: String(match.output.1)) != nil, "index.html names \(match.output.1)")
        }
    }

    @Test func namesCannotLeaveTheFolder() {
        for name in ["app.js", "page-keys.js", "favicon.svg", "a_b.css"] {
            #expect(PortalFiles.isFileName(name), "\(name)")
        }
        for name in ["", ".hidden", "..", "../Package.swift", "a/b.js", "a\\b.js", "a%2fb", "é.js", String(repeating: "a", count: 129)] {
            #expect(!PortalFiles.isFileName(name), "\(name)")
        }
    }

    @Test func aFolderWithoutTheIndexIsRefusedSayingWhere() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("portal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data("x".utf8).write(to: folder.appendingPathComponent("app.js"))
        #expect(throws: PortalError.self) { try PortalFiles(directory: folder) }
        try Data("<!doctype html>".utf8).write(to: folder.appendingPathComponent("index.html"))
        try Data("hidden".utf8).write(to: folder.appendingPathComponent(".secret"))
        let files = try PortalFiles(directory: folder)
        #expect(files.names == ["app.js", "index.html"])
    }

    @Test func validatorsChangeWithTheBytesAndMatchWeakOrStrong() throws {
        let one = PortalFiles.etag(of: Array("one".utf8))
        #expect(one == PortalFiles.etag(of: Array("one".utf8)))
        #expect(one != PortalFiles.etag(of: Array("two".utf8)))
        #expect(PortalRoutes.matches(one, etag: one))
        #expect(PortalRoutes.matches("\"other\", W/\(one)", etag: one))
        #expect(PortalRoutes.matches("*", etag: one))
        #expect(!PortalRoutes.matches("\"other\"", etag: one))
    }
}
