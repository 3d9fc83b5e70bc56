import Billing
import Directory
import Foundation
import Hummingbird
import Pools
import Providers

/// `/admin/v1/provider-keys`: operators add, drain, retire and re-enable provider keys
/// without downtime. A key is accepted once and never returned; lists show its last four
/// characters, its state and its recent use.
extension AdminController {
    func addProviderKeyRoutes(to admin: ManagementRoutes) {
        admin.post("provider-keys", .platform(.manageCatalogue)) { request, context in try await addProviderKey(request, context: context) }
        admin.get("provider-keys", .platform(.manageCatalogue)) { request, _ in try await listProviderKeys(request) }
        admin.get("provider-keys/:id", .platform(.manageCatalogue)) { _, context in
            try json(try await providerKeyBody(id: context.parameters.get("id") ?? ""))
        }
        admin.post("provider-keys/:id/drain", .platform(.manageCatalogue)) { _, context in
            try await changeProviderKey(context: context, to: .draining, reason: "drained by an operator")
        }
        admin.post("provider-keys/:id/retire", .platform(.manageCatalogue)) { _, context in
            try await changeProviderKey(context: context, to: .retired, reason: "retired by an operator")
        }
        admin.post("provider-keys/:id/enable", .platform(.manageCatalogue)) { _, context in
            try await changeProviderKey(context: context, to: .active, reason: nil)
        }
    }

    // MARK: Routes

    private func addProviderKey(_ request: Request, context: ManagementContext) async throws -> Response {
        let body: AdminResources.CreateProviderKey = try await decode(request, context)
        let label = try body.label.map { label throws(OpenAIError) in
            try DisplayName.validated(label, field: "label", allowEmpty: true)
        }
        let secret = body.key.trimmingCharacters(in: .whitespacesAndNewlines)
        try validate(body, secret: secret)
        for tenantID in body.tenants ?? [] where try await directory.tenant(id: tenantID) == nil {
            throw OpenAIError.invalidRequest("No tenant has id '\(tenantID)'.", param: "tenants")
        }
        let id = ProviderKeyRecord.newProviderKeyID()
        let lastFour = ProviderKeyCipher.lastFour(of: secret)
        let new = NewProviderKey(
            id: id,
            provider: body.provider,
            label: label.flatMap { $0.isEmpty ? nil : $0 } ?? "\(body.provider) …\(lastFour)",
            weight: body.weight ?? 1,
            requestsPerMinute: body.requestsPerMinute,
            tokensPerMinute: body.tokensPerMinute,
            tiers: body.tiers ?? [],
            tenants: body.tenants ?? [],
            sealedSecret: try cipher.seal(secret, keyID: id, provider: body.provider),
            lastFour: lastFour
        )
        let record = try await context.record("provider_key_added", target: { _ in id }) { db in
            try Directory.createProviderKey(new, now: Date(), in: db)
        }
        await reloadCatalogue()
        return try json(AdminResources.ProviderKeyBody(record: record, live: nil), status: .created)
    }

    private func listProviderKeys(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        let includeRetired = parameters["include_retired"].map { $0 == "true" || $0 == "1" } ?? false
        let provider = parameters["provider"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let (revision, allRecords) = try await directory.providerKeyCatalogue(includeRetired: includeRetired)
        let records = allRecords.filter { provider == nil || $0.provider == provider }
        let environmentKeys = keyCatalogue.environmentKeys.filter { provider == nil || $0.provider == provider }
        var ids: [String: [String]] = [:]
        for key in environmentKeys { ids[key.provider, default: []].append(key.id) }
        for record in records { ids[record.provider, default: []].append(record.id) }
        var live: [String: ProviderKeyLive] = [:]
        for (provider, keyIDs) in ids {
            live.merge(await liveStatus(provider: provider, keyIDs: keyIDs)) { current, _ in current }
        }
        let bodies = environmentKeys.map { AdminResources.ProviderKeyBody(environmentKey: $0, live: live[$0.id]) }
            + records.map { AdminResources.ProviderKeyBody(record: $0, live: live[$0.id]) }
        return try json(AdminResources.ProviderKeyListBody(
            revision: revision, loadedRevision: max(0, keyCatalogue.revision), data: bodies
        ))
    }

    private func changeProviderKey(
        context: ManagementContext, to state: ProviderKeyRecord.State, reason: String?
    ) async throws -> Response {
        let id = context.parameters.get("id") ?? ""
        if let key = keyCatalogue.environmentKeys.first(where: { $0.id == id }) {
            guard state == .active else {
                throw OpenAIError(
                    status: 409,
                    message: "Key '\(id)' comes from the environment variable of providers.json; to take it out of the pool, add its replacement, then unset the variable and restart.",
                    type: "invalid_request_error",
                    code: "environment_key"
                )
            }
            try await resetLiveState(provider: key.provider, keyID: key.id)
            try await context.recordUnchanged("provider_key_enabled", target: id)
            return try json(try await providerKeyBody(id: id))
        }
        guard let current = try await directory.providerKey(id: id) else { throw Self.providerKeyNotFound(id) }
        if state == .active {
            // Clears a cooldown or a rejection the pool holds, before the key is back in
            // the catalogue: if the shared store cannot be reached, nothing has changed.
            try await resetLiveState(provider: current.provider, keyID: id)
            if current.state == .active {
                try await context.recordUnchanged("provider_key_enabled", target: id)
                return try json(try await providerKeyBody(id: id))
            }
        }
        do {
            let action = switch state {
            case .active: "provider_key_enabled"
            case .draining: "provider_key_drained"
            case .disabled: "provider_key_disabled"
            case .retired: "provider_key_retired"
            }
            guard try await context.record(action, target: { _ in id }, { db in
                try Directory.setProviderKeyState(id: id, to: state, reason: reason, now: Date(), in: db)
            }) != nil else {
                throw Self.providerKeyNotFound(id)
            }
        } catch let error as DirectoryError where error.code == .retired {
            throw OpenAIError(
                status: 409, message: "Key '\(id)' is retired; add a new key instead.", type: "invalid_request_error", code: "key_retired"
            )
        }
        if state == .retired {
            // A retired key's live state (kept for a day, or for good while disabled)
            // is no longer of use: let it expire like an idle key's.
            for pool in topology.keyPools(ofProvider: current.provider) {
                try? await keyPool.reset(pool: pool, keyID: id)
            }
            // The sealed copy is gone from the database file; move it out of the
            // write-ahead log too. Busy readers only postpone that to a later checkpoint.
            do { try ledger.checkpoint() } catch { logger.info("checkpoint after retiring a key postponed", metadata: ["error": "\(error)"]) }
        }
        await reloadCatalogue()
        return try json(try await providerKeyBody(id: id))
    }

    /// The change is in the directory; every replica picks it up within its refresh interval
    /// even if this replica cannot reload now.
    private func reloadCatalogue() async {
        do {
            try await keyCatalogue.reload()
        } catch {
            logger.warning("provider-key catalogue reload failed; the refresh will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Clears the key's cooldowns and rejection in every deployment's pool.
    private func resetLiveState(provider: String, keyID: String) async throws {
        do {
            for pool in topology.keyPools(ofProvider: provider) {
                try await keyPool.reset(pool: pool, keyID: keyID)
            }
        } catch {
            throw OpenAIError(
                status: 503,
                message: "The shared key-pool store cannot be reached, so the key's health cannot be reset; retry shortly.",
                type: "server_error",
                code: "key_pool_unavailable"
            )
        }
    }

    // MARK: Plumbing

    private func providerKeyBody(id: String) async throws -> AdminResources.ProviderKeyBody {
        if let key = keyCatalogue.environmentKeys.first(where: { $0.id == id }) {
            let live = await liveStatus(provider: key.provider, keyIDs: [id])[id]
            return AdminResources.ProviderKeyBody(environmentKey: key, live: live)
        }
        guard let record = try await directory.providerKey(id: id) else { throw Self.providerKeyNotFound(id) }
        let live = await liveStatus(provider: record.provider, keyIDs: [id])[id]
        return AdminResources.ProviderKeyBody(record: record, live: live)
    }

    /// Each key's live state over the pools of its provider's deployments: requests in
    /// flight and in the last minute summed, the latest use and error, and the deployments
    /// it is cooling down on. Without the shared store the list still shows the catalogue.
    private func liveStatus(provider: String, keyIDs: [String]) async -> [String: ProviderKeyLive] {
        var live: [String: ProviderKeyLive] = [:]
        for pool in topology.keyPools(ofProvider: provider) {
            guard let statuses = try? await keyPool.status(pool: pool, keyIDs: keyIDs) else { continue }
            for (id, status) in statuses {
                live[id, default: ProviderKeyLive()].add(status, deployment: pool)
            }
        }
        return live
    }

    private func validate(_ body: AdminResources.CreateProviderKey, secret: String) throws(OpenAIError) {
        guard let kind = topology.providerKinds[body.provider] else {
            let known = topology.providerKinds.filter { $0.value != .engine }.keys.sorted().joined(separator: ", ")
            throw OpenAIError.invalidRequest("Unknown provider '\(body.provider)'; providers with key pools: \(known).", param: "provider")
        }
        guard kind != .engine else {
            throw OpenAIError.invalidRequest(
                "Provider '\(body.provider)' is an engine pool; engines take no pooled provider keys.", param: "provider"
            )
        }
        guard !secret.isEmpty, secret.utf8.count <= 4096,
              secret.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else {
            // The message never echoes what was sent: it may be a real key.
            throw OpenAIError.invalidRequest("'key' must be 1 to 4096 printable ASCII characters without spaces.", param: "key")
        }
        if let weight = body.weight, !(1...1000).contains(weight) {
            throw OpenAIError.invalidRequest("'weight' must be between 1 and 1000.", param: "weight")
        }
        for (name, value) in [("requests_per_minute", body.requestsPerMinute), ("tokens_per_minute", body.tokensPerMinute)] {
            if let value, !(1...TenantLimits.largestLimit).contains(value) {
                throw OpenAIError.invalidRequest("'\(name)' must be between 1 and 1000000000.", param: name)
            }
        }
        for tier in body.tiers ?? [] where topology.contracts[tier] == nil {
            let known = topology.contracts.keys.sorted().joined(separator: ", ")
            throw OpenAIError.invalidRequest("Unknown tier '\(tier)'; configured tiers: \(known).", param: "tiers")
        }
    }

    static func providerKeyNotFound(_ id: String) -> OpenAIError {
        OpenAIError(status: 404, message: "No provider key has id '\(id)'.", type: "invalid_request_error", code: "not_found")
    }
}
