import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// What a network error means, in an operator's words: NIO's own text names system calls
/// and error types, which say little to someone running the command.
enum NetworkFailure {
    /// A short phrase for `error`, e.g. `address already in use` or `connection refused`.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as IOError:
            describe(errno: error.errnoCode)
        case let error as NIOConnectionError:
            if let lookup = error.dnsAError ?? error.dnsAAAAError {
                describe(lookup)
            } else if let first = error.connectionErrors.first {
                describe(first.error)
            } else {
                "cannot connect to \(error.host):\(error.port)"
            }
        case let error as SocketAddressError.UnknownHost:
            "cannot resolve the host name \(error.host) (\(error.errorDescription.lowercased()))"
        case let error as HTTPClientError:
            describe(error)
        case let error as NIOSSLError:
            describe(error)
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            "its TLS certificate is not valid for this host name"
        case is NIOSSLExtraError:
            "the TLS handshake failed"
        case let error as ChannelError:
            describe(error)
        case is CancellationError:
            "cancelled"
        default:
            "\(error)"
        }
    }

    private static func describe(errno code: CInt) -> String {
        switch code {
        case EADDRINUSE: "address already in use"
        case EADDRNOTAVAIL: "that address is not one of this machine's"
        case EACCES: "permission denied"
        case ECONNREFUSED: "connection refused"
        case ECONNRESET: "the connection was reset"
        case ETIMEDOUT: "timed out"
        case EHOSTUNREACH: "no route to the host"
        case ENETUNREACH: "the network is unreachable"
        case EPIPE: "the connection was closed"
        default: String(cString: strerror(code)).lowercased()
        }
    }

    private static func describe(_ error: HTTPClientError) -> String {
        switch error {
        case .connectTimeout: "timed out connecting"
        case .tlsHandshakeTimeout: "timed out in the TLS handshake"
        case .readTimeout, .deadlineExceeded: "timed out waiting for the answer"
        case .remoteConnectionClosed: "the connection closed before the answer was complete"
        case .invalidURL, .emptyHost, .emptyScheme: "not a valid URL"
        case .cancelled: "cancelled"
        default: "the HTTP exchange failed (\(error))"
        }
    }

    private static func describe(_ error: NIOSSLError) -> String {
        guard case .handshakeFailed(let cause) = error else { return "TLS failed" }
        // BoringSSL's reason codes are the only place the cause is spelled out.
        let text = "\(cause)"
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("HTTP_REQUEST") {
            return "the TLS handshake failed: the server does not speak TLS (use http://)"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "the TLS handshake failed: its certificate is not trusted"
        }
        return "the TLS handshake failed"
    }

    private static func describe(_ error: ChannelError) -> String {
        switch error {
        case .connectTimeout: "timed out connecting"
        case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed: "the connection was closed"
        case .writeHostUnreachable: "no route to the host"
        default: "the connection failed (\(error))"
        }
    }

    /// Whether `error` is a failure to open a listening socket, not one from later on.
    private static func isListenFailure(_ error: any Error) -> Bool {
        error is IOError || error is SocketAddressError || error is SocketAddressError.UnknownHost || error is ChannelError
    }

    /// Runs a server, turning a failure to listen into `cannot listen on HOST:PORT: reason`
    /// on standard error and exit status 1. `run` calls the closure it is given once the
    /// server listens: a failure after that is not a failure to listen.
    static func reportingListenFailure(
        host: String, port: Int, _ run: (_ listening: @escaping @Sendable () -> Void) async throws -> Void
    ) async throws {
        let started = Listening()
        do {
            try await run { started.mark() }
        } catch where !started.isListening && isListenFailure(error) {
            FileHandle.standardError.write(Data("switchyard: cannot listen on \(host):\(port): \(describe(error))\n".utf8))
            throw ExitCode.failure
        }
    }

    /// Set once the server listens, from whichever thread it reports that on.
    private final class Listening: Sendable {
        private let flag = Mutex(false)
        var isListening: Bool { flag.withLock { $0 } }
        func mark() { flag.withLock { $0 = true } }
    }
}
