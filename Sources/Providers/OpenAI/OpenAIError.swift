import NIOCore

/// An error in OpenAI's shape, as every client-facing error of Switchyard is:
/// `{"error":{"message","type","param","code"}}` with an HTTP status.
public struct OpenAIError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// The JSON body, `{"error":{...}}`.
    public func jsonBody() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(96 + message.utf8.count)
        writeJSON(into: &buffer)
        return buffer
    }

    /// Writes the JSON body into `buffer`.
    public func writeJSON(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"error":{"message":"#)
        buffer.writeJSONString(message)
        buffer.writeStaticString(#","type":"#)
        buffer.writeJSONString(type)
        buffer.writeStaticString(#","param":"#)
        if let param { buffer.writeJSONString(param) } else { buffer.writeStaticString("null") }
        buffer.writeStaticString(#","code":"#)
        if let code { buffer.writeJSONString(code) } else { buffer.writeStaticString("null") }
        buffer.writeStaticString("}}")
    }

    /// The body as one server-sent event, for errors that happen after a stream began.
    public func sseEvent() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStaticString("data: ")
        writeJSON(into: &buffer)
        buffer.writeStaticString("\n\n")
        return buffer
    }
}

// MARK: - The errors Switchyard itself raises

extension OpenAIError {
    public static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public static let invalidAPIKey = OpenAIError(
        status: 401,
        message: "Incorrect API key provided. You can find your API key in the Switchyard console or ask your administrator.",
        type: "invalid_request_error",
        code: "invalid_api_key"
    )

    public static let missingAPIKey = OpenAIError(
        status: 401,
        message: "You didn't provide an API key. Send it in the Authorization header as 'Bearer sk-sy-...'.",
        type: "invalid_request_error",
        code: "invalid_api_key"
    )

    public static func modelNotFound(_ model: String) -> OpenAIError {
        OpenAIError(
            status: 404,
            message: "The model `\(model)` does not exist or you do not have access to it.",
            type: "invalid_request_error",
            param: "model",
            code: "model_not_found"
        )
    }

    public static func bodyTooLarge(limit: Int) -> OpenAIError {
        OpenAIError(
            status: 413,
            message: "The request body exceeds the limit of \(limit) bytes.",
            type: "invalid_request_error",
            code: "request_too_large"
        )
    }

    public static func upstreamUnavailable(_ message: String) -> OpenAIError {
        OpenAIError(status: 503, message: message, type: "server_error", code: "upstream_unavailable")
    }

    public static func upstreamFailed(_ message: String) -> OpenAIError {
        OpenAIError(status: 502, message: message, type: "server_error", code: "upstream_error")
    }
}

// MARK: - JSON string encoding

extension Array where Element == UInt8 {
    /// `string` as a quoted, escaped JSON string, for splicing into JSON text.
    public static func jsonString(_ string: String) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeJSONString(string)
        return Array(buffer.readableBytesView)
    }
}

extension ByteBuffer {
    /// Writes `string` as a quoted, escaped JSON string.
    public mutating func writeJSONString(_ string: String) {
        writeInteger(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart..<index])))
                writeEscaped(byte)
                runStart = index + 1
            }
            writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count])))
        }
        writeInteger(UInt8(ascii: "\""))
    }

    private mutating func writeEscaped(_ byte: UInt8) {
        switch byte {
        case UInt8(ascii: "\""): writeStaticString("\\\"")
        case UInt8(ascii: "\\"): writeStaticString("\\\\")
        case 0x0A: writeStaticString("\\n")
        case 0x0D: writeStaticString("\\r")
        case 0x09: writeStaticString("\\t")
        default:
            let hex: [UInt8] = Array("0123456789abcdef".utf8)
            writeStaticString("\\u00")
            writeInteger(hex[Int(byte >> 4)])
            writeInteger(hex[Int(byte & 0x0F)])
        }
    }
}
