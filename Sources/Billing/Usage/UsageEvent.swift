import Foundation

/// The metered record of one request that reached an upstream.
public struct UsageEvent: Sendable, Equatable {
    public var requestID: String
    public var tenantID: String
    public var tenantKeyID: String?
    /// The public model the tenant asked for.
    public var model: String
    public var deployment: String?
    public var provider: String?
    /// The provider key that served the request (its id, never the key).
    public var providerKeyID: String?
    public var promptTokens: Int
    public var cachedTokens: Int
    public var completionTokens: Int
    public var reasoningTokens: Int
    /// True when the upstream reported no usage and the counts are estimates.
    public var tokensEstimated: Bool
    public var costMicros: Int64
    public var currency: String
    /// The HTTP status the client saw.
    public var status: Int
    /// The OpenAI error type, for failed requests.
    public var errorType: String?
    public var startedAt: Date
    /// Milliseconds from the request's start to the first byte of the upstream's answer.
    public var timeToFirstTokenMilliseconds: Int?
    public var durationMilliseconds: Int
    public var streamed: Bool
    public var clientAborted: Bool
    /// Milliseconds the request waited for an engine slot; nil when it asked no engine pool.
    public var queueMilliseconds: Int?
    /// True when a saturated engine pool sent the request to an external provider.
    public var spilled: Bool
    /// The engine pool whose slot served the request; nil for external providers.
    public var enginePool: String?
    /// Milliseconds the attempt that answered held its engine slot: the request's
    /// occupancy of the pool, the basis of its share of the pool's cost. nil for providers.
    public var slotMilliseconds: Int?
    /// What the tenant is billed for the request beyond its quota, in micro-units of
    /// `currency`; nil when it is not billed through Switchyard. Set by the ledger when it
    /// stores the event (from `terms`); ignored on the way in.
    public var billedMicros: Int64?
    /// The user who owns the tenant key that sent the request; nil for keys made before
    /// users existed (and older events).
    public var userID: String?
    /// The terms the request is billed under; read when the event is stored, never stored
    /// itself (an event read back has nil).
    public var terms: BillingTerms?

    public init(
        requestID: String,
        tenantID: String,
        tenantKeyID: String?,
        model: String,
        deployment: String?,
        provider: String?,
        providerKeyID: String? = nil,
        promptTokens: Int = 0,
        cachedTokens: Int = 0,
        completionTokens: Int = 0,
        reasoningTokens: Int = 0,
        tokensEstimated: Bool = false,
        costMicros: Int64 = 0,
        currency: String = "USD",
        status: Int,
        errorType: String? = nil,
        startedAt: Date,
        timeToFirstTokenMilliseconds: Int? = nil,
        durationMilliseconds: Int,
        streamed: Bool,
        clientAborted: Bool = false,
        queueMilliseconds: Int? = nil,
        spilled: Bool = false,
        enginePool: String? = nil,
        slotMilliseconds: Int? = nil,
        billedMicros: Int64? = nil,
        userID: String? = nil,
        terms: BillingTerms? = nil
    ) {
        self.requestID = requestID
        self.tenantID = tenantID
        self.tenantKeyID = tenantKeyID
        self.model = model
        self.deployment = deployment
        self.provider = provider
        self.providerKeyID = providerKeyID
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.completionTokens = completionTokens
        self.reasoningTokens = reasoningTokens
        self.tokensEstimated = tokensEstimated
        self.costMicros = costMicros
        self.currency = currency
        self.status = status
        self.errorType = errorType
        self.startedAt = startedAt
        self.timeToFirstTokenMilliseconds = timeToFirstTokenMilliseconds
        self.durationMilliseconds = durationMilliseconds
        self.streamed = streamed
        self.clientAborted = clientAborted
        self.queueMilliseconds = queueMilliseconds
        self.spilled = spilled
        self.enginePool = enginePool
        self.slotMilliseconds = slotMilliseconds
        self.billedMicros = billedMicros
        self.userID = userID
        self.terms = terms
    }
}
