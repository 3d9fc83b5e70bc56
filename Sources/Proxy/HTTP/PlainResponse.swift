import HTTPTypes
import Hummingbird
import NIOCore
import Providers

/// A whole answer held in memory: a status, its headers and a body. What both request
/// paths send for errors and refusals; Hummingbird's routes send it as a `Response`, the
/// inference data plane writes its parts straight to the connection.
struct PlainResponse: Sendable {
    var status: Int
    var headers: HTTPFields
    var body: ByteBuffer
    /// The error's type, when the answer is one (for the access log).
    var errorType: String?

    /// The error as a JSON answer.
    init(_ error: OpenAIError) {
        let body = error.jsonBody()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(body.readableBytes)
        self.init(status: error.status, headers: headers, body: body)
        self.errorType = error.type
    }

    init(status: Int, headers: HTTPFields, body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The answer as Hummingbird sends it.
    var response: Response {
        Response(status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: body))
    }
}
