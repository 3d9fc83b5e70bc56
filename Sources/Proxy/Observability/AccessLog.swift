import Billing
import Logging

/// One `info` line per inference request, written when its usage event is: who asked for
/// what, where it went, how it ended and how long it took. It carries identifiers and
/// figures only, never a key, a prompt or a completion. `serve --access-log off` turns it off.
struct AccessLog: Sendable {
    let logger: Logger

    func record(_ event: UsageEvent) {
        guard logger.logLevel <= .info else { return }
        var fields: Logger.Metadata = [
            "request_id": .string(event.requestID),
            "tenant_id": .string(event.tenantID),
            "model": .string(event.model),
            "status": .stringConvertible(event.status),
            "duration_ms": .stringConvertible(event.durationMilliseconds),
            "prompt_tokens": .stringConvertible(event.promptTokens),
            "completion_tokens": .stringConvertible(event.completionTokens),
            "cost_micros": .stringConvertible(event.costMicros),
            "streamed": .stringConvertible(event.streamed),
        ]
        if let key = event.tenantKeyID { fields["key_id"] = .string(key) }
        if let user = event.userID { fields["user_id"] = .string(user) }
        if let deployment = event.deployment { fields["deployment"] = .string(deployment) }
        if let provider = event.provider { fields["provider"] = .string(provider) }
        if let ttft = event.timeToFirstTokenMilliseconds { fields["ttft_ms"] = .stringConvertible(ttft) }
        if let queue = event.queueMilliseconds { fields["queue_ms"] = .stringConvertible(queue) }
        if let error = event.errorType { fields["error_type"] = .string(error) }
        if event.tokensEstimated { fields["tokens_estimated"] = .stringConvertible(true) }
        if event.clientAborted { fields["client_aborted"] = .stringConvertible(true) }
        if event.spilled { fields["spilled"] = .stringConvertible(true) }
        logger.info("request", metadata: fields)
    }

    /// A request answered before it was admitted (a bad key, a malformed body, an unknown
    /// model, a limit), which leaves no usage event.
    func refused(
        requestID: String, tenant: AuthenticatedTenant?, model: String?, status: Int, errorType: String?, duration: Duration
    ) {
        guard logger.logLevel <= .info else { return }
        var fields: Logger.Metadata = [
            "request_id": .string(requestID),
            "status": .stringConvertible(status),
            "duration_ms": .stringConvertible(duration.wholeMilliseconds),
            "prompt_tokens": .stringConvertible(0),
            "completion_tokens": .stringConvertible(0),
        ]
        if let tenant {
            fields["tenant_id"] = .string(tenant.tenantID)
            fields["key_id"] = .string(tenant.keyID)
            if let user = tenant.userID { fields["user_id"] = .string(user) }
        }
        if let model { fields["model"] = .string(model) }
        if let errorType { fields["error_type"] = .string(errorType) }
        logger.info("request", metadata: fields)
    }
}
