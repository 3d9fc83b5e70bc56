import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Providers

/// The OpenAI-compatible routes, under `/v1` and under `/tenants/{tenant}/v1`.
struct InferenceController {
    let pipeline: RequestPipeline
    let topology: Topology
    let keys: ProviderKeys
    let authentication: TenantKeyMiddleware
    /// The `created` time reported for every model: when the configuration was loaded.
    let modelsCreated = Int(Date().timeIntervalSince1970)

    func addRoutes(to router: KnownRoutes) {
        for prefix in ["v1", "tenants/:tenant/v1"] {
            let group = router.group(RouterPath(prefix)).add(middleware: authentication)
            for endpoint in InferenceEndpoint.allCases {
                group.post(RouterPath(endpoint.path)) { request, context in
                    try await pipeline.handle(request, context: context, endpoint: endpoint)
                }
            }
            group.get("models") { _, context in
                listModels(context: context)
            }
            group.get("models/:model") { _, context in
                let name = context.parameters.get("model") ?? ""
                guard let tenant = context.tenant, topology.models(for: tenant.contract, isServable: keys.isServable).contains(name) else {
                    throw OpenAIError.modelNotFound(name)
                }
                return jsonResponse(modelJSON(name))
            }
        }
    }

    private func listModels(context: SwitchyardRequestContext) -> Response {
        let models = context.tenant.map { topology.models(for: $0.contract, isServable: keys.isServable) } ?? []
        var buffer = ByteBuffer()
        buffer.writeStaticString(#"{"object":"list","data":["#)
        for (index, name) in models.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            buffer.writeString(modelJSON(name))
        }
        buffer.writeStaticString("]}")
        return jsonResponse(buffer)
    }

    private func modelJSON(_ name: String) -> String {
        var buffer = ByteBuffer()
        buffer.writeStaticString(#"{"id":"#)
        buffer.writeJSONString(name)
        buffer.writeString(#","object":"model","created":\#(modelsCreated),"owned_by":"switchyard"}"#)
        return String(buffer: buffer)
    }

    private func jsonResponse(_ json: String) -> Response {
        jsonResponse(ByteBuffer(string: json))
    }

    private func jsonResponse(_ body: ByteBuffer) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}
