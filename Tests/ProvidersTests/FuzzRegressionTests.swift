import NIOCore
import Testing

@testable import Providers

/// Inputs the fuzz targets in `fuzz/` found (minimised), kept as tests once fixed.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// FuzzResponses: `HTTP/1.1 0` with the body `{"error":{}}`. An OpenAI-shaped error
    /// body kept the upstream's status whatever it was, so a 3xx, a 1xx or a status past
    /// 599 reached the client as the status of an error.
    @Test(
        "an OpenAI-shaped error body with a status that is no error status maps to an error status",
        arguments: [0, 29, 101, 204, 302, 304, 600, 999]
    )
    func openAIShapedBodyWithNonErrorStatus(status: Int) {
        let body = ByteBuffer(string: #"{"error":{"message":"moved","type":"server_error","code":"moved"}}"#)
        for adapter in [OpenAIAdapter(kind: .openai), OpenAIAdapter(kind: .azureOpenAI), OpenAIAdapter(kind: .engine)] {
            let failure = adapter.mapError(status: status, headers: [], body: body)
            #expect((400...599).contains(failure.error.status), "status \(status) became \(failure.error.status)")
        }
        #expect(UpstreamError.map(status: status, body: ByteBuffer(string: #"{"error":{}}"#)).status == 502)
    }

    @Test("an OpenAI-shaped error body keeps an error status", arguments: [400, 404, 418, 429, 500, 503, 529, 599])
    func openAIShapedBodyKeepsErrorStatus(status: Int) {
        let error = UpstreamError.map(status: status, body: ByteBuffer(string: #"{"error":{"message":"m","type":"t"}}"#))
        #expect(error.status == status)
        #expect(error.message == "m")
    }
}
