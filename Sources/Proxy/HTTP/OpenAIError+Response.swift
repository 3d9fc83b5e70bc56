import HTTPTypes
import Hummingbird
import NIOCore
import Providers

extension OpenAIError {
    /// The error as a JSON response.
    public func response() -> Response {
        let body = jsonBody()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: body))
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("x-request-id")!
}
