import Foundation
import NIOCore
import Testing

@testable import Proxy

@Suite("SMTP mailer")
struct SMTPMailerTests {
    // MARK: - Configuration

    @Test func parsesURLs() throws {
        let plain = try SMTPConfiguration(url: "smtp://mail.example.com")
        #expect(plain.host == "mail.example.com")
        #expect(plain.port == 25)
        #expect(!plain.implicitTLS)
        #expect(plain.from == "switchyard@mail.example.com")
        #expect(plain.credentials == nil)
        #expect(!plain.insecureSkipVerify)

        let implicit = try SMTPConfiguration(url: "smtps://alice:p%40ss%3Aword@mail.example.com")
        #expect(implicit.port == 465)
        #expect(implicit.implicitTLS)
        #expect(implicit.credentials?.username == "alice")
        #expect(implicit.credentials?.password == "p@ss:word")

        let custom = try SMTPConfiguration(url: "smtp://mail:2525?from=noreply@example.com&tls_verify=false")
        #expect(custom.host == "mail")
        #expect(custom.port == 2525)
        #expect(custom.from == "noreply@example.com")
        #expect(custom.insecureSkipVerify)

        #expect(try SMTPConfiguration(url: "smtp://127.0.0.1:2525").from == "switchyard@[127.0.0.1]")
        #expect(try SMTPConfiguration(url: "smtp://[::1]:2525").from == "switchyard@[IPv6:::1]")
    }

    @Test func passwordsNeverPrint() throws {
        let configuration = try SMTPConfiguration(url: "smtps://alice:hunter2@mail.example.com")
        #expect(!"\(configuration)".contains("hunter2"))
        #expect(!String(reflecting: configuration).contains("hunter2"))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("hunter2"))
        #expect("\(configuration)".contains("alice"))
    }

    @Test(arguments: [
        ("http://mail.example.com", "scheme"),
        ("mail.example.com", "scheme"),
        ("smtp://", "host"),
        ("smtp://:25", "host"),
        ("smtp://mail:0", "port"),
        ("smtp://mail:70000", "port"),
        ("smtp://mail/path", "only a host"),
        ("smtp://alice@mail", "credentials"),
        ("smtp://mail?tls_verify=maybe", "tls_verify"),
        ("smtp://mail?bogus=1", "unknown query parameter 'bogus'"),
        ("smtp://mail?from=a@b&from=c@d", "twice"),
        ("smtp://mail?from=not-an-address", "from"),
    ])
    func rejectsBadURLs(url: String, reason: String) {
        let error = #expect(throws: SMTPError.self) { try SMTPConfiguration(url: url) }
        #expect(error?.step == .configuration)
        #expect(error?.description.contains(reason) == true, "\(error.map(String.init(describing:)) ?? "")")
    }

    @Test func badURLErrorsDoNotRepeatThePassword() {
        let error = #expect(throws: SMTPError.self) { try SMTPConfiguration(url: "smtp://alice:hunter2@mail?bogus=1") }
        #expect(error.map { !"\($0)".contains("hunter2") } == true)
    }

    // MARK: - Header injection

    @Test func refusesLineBreaksInFrom() {
        let error = #expect(throws: SMTPError.self) {
            try SMTPConfiguration(url: "smtp://mail?from=a@example.com%0D%0ABcc:%20eve@example.com")
        }
        #expect(error?.kind == .unsafeField("from"))
    }

    @Test(arguments: [
        (MailMessage(to: "bob@example.com\r\nBcc: eve@example.com", subject: "Hi", textBody: "x"), "to"),
        (MailMessage(to: "bob@example.com\nBcc: eve@example.com", subject: "Hi", textBody: "x"), "to"),
        (MailMessage(to: "bob@example.com", subject: "Hi\r\nBcc: eve@example.com", textBody: "x"), "subject"),
        (MailMessage(to: "bob@example.com", subject: "Hi\nBcc: eve@example.com", textBody: "x"), "subject"),
        (MailMessage(to: "bob@example.com", subject: "Hi\rthere", textBody: "x"), "subject"),
    ])
    func refusesInjectedMessages(message: MailMessage, field: String) async throws {
        let error = #expect(throws: SMTPError.self) { try message.rendered(from: "a@example.com", date: Date()) }
        #expect(error?.step == .message)
        #expect(error?.kind == .unsafeField(field))

        // Refused before any connection: port 1 has no server, so a connect would fail otherwise.
        let mailer = try SMTPMailer(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:1"))
        let sendError = await #expect(throws: SMTPError.self) { try await mailer.send(message) }
        #expect(sendError?.step == .message)
    }

    @Test(arguments: ["bob", "@example.com", "bob@", "bob <bob@example.com>", "bøb@example.com", "a@b@c", "bob@exa mple.com"])
    func refusesInvalidAddresses(address: String) {
        let message = MailMessage(to: address, subject: "Hi", textBody: "x")
        let error = #expect(throws: SMTPError.self) { try message.rendered(from: "a@example.com", date: Date()) }
        #expect(error?.kind == .invalidAddress("to"))
    }

    // MARK: - Rendering

    @Test func rendersHeadersAndStuffsDots() throws {
        let message = MailMessage(to: "bob@example.com", subject: "Your invite", textBody: "Hello,\n.hidden\n.\nbye\n")
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let buffer = try message.rendered(from: "noreply@example.com", date: date)
        let text = String(buffer: buffer)
        #expect(text.hasPrefix("From: noreply@example.com\r\nTo: bob@example.com\r\nSubject: Your invite\r\n"))
        #expect(text.contains("\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\n"))
        #expect(text.contains("\r\nMessage-ID: <"), "\(text)")
        #expect(text.contains("@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"))
        #expect(text.hasSuffix("\r\n\r\nHello,\r\n..hidden\r\n..\r\nbye\r\n.\r\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "every line ends in CRLF")
    }

    @Test func encodesNonASCII() throws {
        let subject = "Einladung: Grüße 🚂 — willkommen bei Switchyard, deinem neuen Gateway für alles"
        let body = "Grüße!\n.dot\n" + String(repeating: "é", count: 60) + " \n"
        let text = String(buffer: try MailMessage(to: "bob@example.com", subject: subject, textBody: body)
            .rendered(from: "a@example.com", date: Date()))
        let lines = text.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 78 && $0.unicodeScalars.allSatisfy(\.isASCII) }, "\(lines)")
        #expect(text.contains("Subject: =?UTF-8?B?"))
        #expect(text.contains("Content-Transfer-Encoding: quoted-printable\r\n"))
        #expect(text.contains("\r\nGr=C3=BC=C3=9Fe!\r\n..dot\r\n=C3=A9"))
        #expect(text.contains("=20\r\n.\r\n"), "trailing space is encoded")
        #expect(lines.contains { $0.hasSuffix("=") && $0.hasPrefix("=C3") }, "long lines are soft-broken")
    }

    // MARK: - Replies

    @Test func parsesMultiLineReplies() throws {
        var parser = SMTPReplyParser()
        parser.append(ByteBuffer(string: "250-mail.example.com hi\r\n250-STARTTLS\r\n25"))
        #expect(try parser.nextReply() == nil)
        parser.append(ByteBuffer(string: "0 AUTH PLAIN LOGIN\r\n220 ready\n"))
        #expect(try parser.nextReply() == SMTPReply(code: 250, lines: ["mail.example.com hi", "STARTTLS", "AUTH PLAIN LOGIN"]))
        #expect(try parser.nextReply() == SMTPReply(code: 220, lines: ["ready"]))
        #expect(try parser.nextReply() == nil)
        #expect(!parser.hasUnreadBytes)
        parser.append(ByteBuffer(string: "354\r\n"))
        #expect(try parser.nextReply() == SMTPReply(code: 354, lines: [""]))
    }

    @Test(arguments: ["250-a\r\n251 b\r\n", "hello\r\n", "25\r\n", "250x\r\n", "100 low\r\n", String(repeating: "2", count: 5000)])
    func rejectsMalformedReplies(input: String) {
        var parser = SMTPReplyParser()
        parser.append(ByteBuffer(string: input))
        #expect(throws: SMTPReplyParser.Malformed.self) {
            while try parser.nextReply() != nil {}
        }
    }

    // MARK: - Against aiosmtpd

    @Test func deliversToARealServer() async throws {
        let server = try SMTPTestServer(mode: .plain)
        defer { server.stop() }
        let mailer = try SMTPMailer(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)?from=noreply@switchyard.test"))

        let subject = "Einladung: Grüße 🚂"
        try await mailer.send(MailMessage(to: "bob@example.com", subject: subject, textBody: "Hello,\n.hidden line\n.\nbye"))
        let body = "Grüße aus Zürich\n.punkt\n" + String(repeating: "long line ", count: 30)
        try await mailer.send(MailMessage(to: "carol@example.com", subject: "plain", textBody: body))

        let received = try server.messages()
        try #require(received.count == 2)
        #expect(received[0].mailFrom == "noreply@switchyard.test")
        #expect(received[0].recipients == ["bob@example.com"])
        #expect(received[0].subject == subject)
        #expect(received[0].body == "Hello,\n.hidden line\n.\nbye\n")
        #expect(received[0].from == "noreply@switchyard.test")
        #expect(received[0].to == "bob@example.com")
        #expect(received[0].hasDateAndMessageID)
        #expect(!received[0].tls)
        #expect(received[1].recipients == ["carol@example.com"])
        #expect(received[1].body == body + "\n")
    }

    @Test func namesTheRefusedStep() async throws {
        let server = try SMTPTestServer(mode: .plain)
        defer { server.stop() }
        let mailer = try SMTPMailer(configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)"))
        let error = await #expect(throws: SMTPError.self) {
            try await mailer.send(MailMessage(to: "nobody@example.com", subject: "Hi", textBody: "x"))
        }
        #expect(error?.step == .recipient)
        #expect(error?.replyCode == 550)
        #expect(error?.description == "SMTP RCPT TO failed: the server replied 550 5.1.1 no such user")
        #expect(try server.messages().isEmpty)
    }

    @Test func neverSendsCredentialsInClear() async throws {
        let server = try SMTPTestServer(mode: .plain)
        defer { server.stop() }
        let mailer = try SMTPMailer(configuration: SMTPConfiguration(url: "smtp://alice:secret@127.0.0.1:\(server.port)"))
        let error = await #expect(throws: SMTPError.self) {
            try await mailer.send(MailMessage(to: "bob@example.com", subject: "Hi", textBody: "x"))
        }
        #expect(error?.kind == .cleartextCredentials)
        #expect(try server.messages().isEmpty)
    }

    @Test func upgradesWithSTARTTLSAndAuthenticates() async throws {
        let server = try SMTPTestServer(mode: .startTLS(username: "alice", password: "s3cr@t"))
        defer { server.stop() }
        let url = "smtp://alice:s3cr%40t@127.0.0.1:\(server.port)?tls_verify=false&from=noreply@switchyard.test"
        let mailer = try SMTPMailer(configuration: SMTPConfiguration(url: url))
        try await mailer.send(MailMessage(to: "bob@example.com", subject: "über TLS", textBody: "secret invite"))

        let received = try server.messages()
        try #require(received.count == 1)
        #expect(received[0].tls)
        #expect(received[0].authenticatedAs == "alice")
        #expect(received[0].subject == "über TLS")
        #expect(received[0].body == "secret invite\n")

        let wrong = try SMTPMailer(configuration: SMTPConfiguration(url: "smtp://alice:wrong@127.0.0.1:\(server.port)?tls_verify=false"))
        let error = await #expect(throws: SMTPError.self) {
            try await wrong.send(MailMessage(to: "bob@example.com", subject: "Hi", textBody: "x"))
        }
        #expect(error?.step == .auth)
        #expect(error?.replyCode == 535)
    }

    @Test func verifiesCertificatesByDefault() async throws {
        let server = try SMTPTestServer(mode: .startTLS(username: "alice", password: "secret"))
        defer { server.stop() }
        let mailer = try SMTPMailer(configuration: SMTPConfiguration(url: "smtp://alice:secret@127.0.0.1:\(server.port)"))
        let error = await #expect(throws: SMTPError.self) {
            try await mailer.send(MailMessage(to: "bob@example.com", subject: "Hi", textBody: "x"))
        }
        #expect(error?.step == .startTLS)
        guard case .tls = error?.kind else {
            Issue.record("expected a TLS failure, got \(error.map(String.init(describing:)) ?? "nothing")")
            return
        }
        #expect(try server.messages().isEmpty)
    }

    @Test func timesOutWaitingForTheGreeting() async throws {
        let server = try SMTPTestServer(mode: .silent)
        defer { server.stop() }
        let mailer = try SMTPMailer(
            configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(server.port)"), replyTimeout: .milliseconds(300)
        )
        let error = await #expect(throws: SMTPError.self) {
            try await mailer.send(MailMessage(to: "bob@example.com", subject: "Hi", textBody: "x"))
        }
        #expect(error?.step == .greeting)
        #expect(error?.kind == .timedOut)
    }
}

// MARK: - aiosmtpd

/// A real aiosmtpd for one test, on a port the kernel chose, saving each message it
/// accepts as JSON in a temporary folder.
///
/// Python comes from `SWITCHYARD_TEST_PYTHON`, else the repository's `.venv` (CI installs
/// `tests/e2e/requirements.txt` there).
final class SMTPTestServer {
    enum Mode {
        case plain
        /// STARTTLS required, with a fresh self-signed certificate, and AUTH PLAIN for one login.
        case startTLS(username: String, password: String)
        /// Accepts connections and never says a word.
        case silent
    }

    struct Message {
        var mailFrom: String
        var recipients: [String]
        var from: String
        var to: String
        var subject: String
        var body: String
        var hasDateAndMessageID: Bool
        var tls: Bool
        var authenticatedAs: String?
    }

    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    let port: Int
    private let directory: URL
    private let process: Process
    private let input = Pipe()

    init(mode: Mode) throws {
        let python = ProcessInfo.processInfo.environment["SWITCHYARD_TEST_PYTHON"]
            ?? URL(filePath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appending(path: ".venv/bin/python").path
        let check = try Self.run(python, ["-c", "import aiosmtpd"])
        guard check.status == 0 else {
            throw Unavailable(description: """
                aiosmtpd cannot be imported by \(python) (\(check.output.trimmingCharacters(in: .whitespacesAndNewlines))): \
                run `.venv/bin/pip install -r tests/e2e/requirements.txt`, or set SWITCHYARD_TEST_PYTHON
                """)
        }

        directory = FileManager.default.temporaryDirectory.appending(path: "switchyard-smtp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appending(path: "server.py")
        try Self.script.write(to: script, atomically: true, encoding: .utf8)
        var arguments = [script.path, directory.path]
        switch mode {
        case .plain: arguments.append("plain")
        case .silent: arguments.append("silent")
        case .startTLS(let username, let password):
            let certificate = directory.appending(path: "cert.pem").path
            let key = directory.appending(path: "key.pem").path
            let openssl = try Self.run("/usr/bin/env", [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", certificate,
            ])
            guard openssl.status == 0 else { throw Unavailable(description: "openssl failed: \(openssl.output)") }
            arguments += ["starttls", certificate, key, username, password]
        }

        process = Process()
        process.executableURL = URL(filePath: python)
        process.arguments = arguments
        let output = Pipe()
        let errors = directory.appending(path: "stderr.txt")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: errors)
        // The server exits when this pipe closes, so it cannot outlive a crashed test run.
        process.standardInput = input
        try process.run()

        var announced = Data()
        while !announced.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            announced.append(chunk)
        }
        let line = String(decoding: announced, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard line.hasPrefix("PORT "), let port = Int(line.dropFirst(5)) else {
            process.terminate()
            let stderr = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
            throw Unavailable(description: "aiosmtpd did not start: \(line) \(stderr)")
        }
        self.port = port
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The messages accepted so far, in order.
    func messages() throws -> [Message] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("message-") && $0.hasSuffix(".json") }
            .sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }
        return try files.map { file in
            let data = try Data(contentsOf: directory.appending(path: file))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return Message(
                mailFrom: json["mail_from"] as? String ?? "",
                recipients: json["rcpt_tos"] as? [String] ?? [],
                from: json["from"] as? String ?? "",
                to: json["to"] as? String ?? "",
                subject: json["subject"] as? String ?? "",
                body: json["body"] as? String ?? "",
                hasDateAndMessageID: json["has_date_and_message_id"] as? Bool ?? false,
                tls: json["tls"] as? Bool ?? false,
                authenticatedAs: json["auth_user"] as? String
            )
        }
    }

    private static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(filePath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private static let script = #"""
        import asyncio, email, email.policy, email.utils, json, os, ssl, sys
        from aiosmtpd.smtp import SMTP, AuthResult

        directory, mode = sys.argv[1], sys.argv[2]

        class Saver:
            count = 0

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address.startswith("nobody@"):
                    return "550 5.1.1 no such user"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                Saver.count += 1
                record = {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "from": str(message["from"]),
                    "to": str(message["to"]),
                    "subject": str(message["subject"]),
                    "body": message.get_content().replace("\r\n", "\n"),
                    "has_date_and_message_id": email.utils.parsedate_to_datetime(message["date"]) is not None
                        and message["message-id"].startswith("<"),
                    "tls": session.ssl is not None,
                    "auth_user": session.auth_data.login.decode() if session.authenticated else None,
                }
                path = os.path.join(directory, f"message-{Saver.count}.json")
                with open(path + ".tmp", "w") as file:
                    json.dump(record, file)
                os.rename(path + ".tmp", path)
                return "250 OK saved"

        def authenticate(server, session, envelope, mechanism, auth_data):
            valid = (auth_data.login.decode(), auth_data.password.decode()) == (sys.argv[5], sys.argv[6])
            return AuthResult(success=valid, handled=False, auth_data=auth_data)

        async def main():
            loop = asyncio.get_running_loop()
            options = {"hostname": "smtp.test"}
            if mode == "starttls":
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(sys.argv[3], sys.argv[4])
                options.update(tls_context=context, require_starttls=True, authenticator=authenticate, auth_require_tls=True)
            factory = asyncio.Protocol if mode == "silent" else (lambda: SMTP(Saver(), **options))
            server = await loop.create_server(factory, "127.0.0.1", 0)
            print("PORT", server.sockets[0].getsockname()[1], flush=True)
            await loop.run_in_executor(None, sys.stdin.read)

        asyncio.run(main())
        """#
}
