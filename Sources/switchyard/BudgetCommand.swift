import ArgumentParser
import Foundation

struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Set, show and clear the budget of a tenant or of a tenant key.",
        discussion: """
            A budget limits tokens, money (integer micro-units: 1 USD = 1000000) or both over a \
            calendar period in UTC (day, week from Monday, month). Once spent it refuses requests \
            with 429 insufficient_quota (--action block) or serves them slowly in the lowest band \
            (--action throttle) until the period resets.
            """,
        subcommands: [Set.self, Show.self, Clear.self, Quota.self]
    )

    /// Whose budget: a tenant (id or name) or a tenant key (id); neither means the
    /// signed-in org user's own tenant.
    struct Owner: ParsableArguments {
        @Option(help: "The tenant's id or name (default: your own, for an org role).")
        var tenant: String?

        @Option(help: "The tenant key's id (key_…).")
        var key: String?

        func validate() throws {
            if tenant != nil, key != nil {
                throw ValidationError("Give --tenant or --key, not both.")
            }
        }

        func path(_ client: AdminClient) async throws -> String {
            if let key { return "/admin/v1/keys/\(key)/budget" }
            return "/admin/v1/tenants/\(try await client.tenantID(tenant))/budget"
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a budget, replacing the one set before.")

        @OptionGroup var connection: AdminOptions
        @OptionGroup var owner: Owner

        @Option(help: "The calendar period (UTC): day, week or month.")
        var period: String = "month"

        @Option(name: .customLong("limit-tokens"), help: "Tokens per period (prompt plus completion).")
        var limitTokens: Int?

        @Option(name: .customLong("limit-micros"), help: "Cost per period, in micro-units of the configured currency.")
        var limitMicros: Int64?

        @Option(name: .customLong("soft-thresholds"), help: "Fractions of the limit that send budget.threshold_reached, e.g. 0.5,0.8 (default 0.8).")
        var softThresholds: String?

        @Option(help: "What happens once spent: block or throttle.")
        var action: String = "block"

        func validate() throws {
            if limitTokens == nil, limitMicros == nil {
                throw ValidationError("Give --limit-tokens, --limit-micros or both.")
            }
            if let softThresholds, thresholds(softThresholds) == nil {
                throw ValidationError("--soft-thresholds takes fractions separated by commas, such as 0.5,0.8.")
            }
        }

        private func thresholds(_ text: String) -> [Double]? {
            let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty, values.allSatisfy({ $0?.isFinite == true }) else { return nil }
            return values.compactMap { $0 }
        }

        func run() async throws {
            try await reportingErrors {
                var body: [String: Any] = ["period": period, "action": action]
                if let limitTokens { body["limit_tokens"] = limitTokens }
                if let limitMicros { body["limit_micros"] = limitMicros }
                if let softThresholds, let values = thresholds(softThresholds) { body["soft_thresholds"] = values }
                let client = try connection.client()
                let budget = try await client.send(.PUT, try await owner.path(client), body: body)
                if connection.json { return Output.printJSON(budget) }
                BudgetCommand.print(budget)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a budget with what its period has used and holds reserved.")

        @OptionGroup var connection: AdminOptions
        @OptionGroup var owner: Owner

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let budget = try await client.send(.GET, try await owner.path(client))
                if connection.json { return Output.printJSON(budget) }
                BudgetCommand.print(budget)
            }
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a budget.")

        @OptionGroup var connection: AdminOptions
        @OptionGroup var owner: Owner

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                _ = try await client.send(.PUT, try await owner.path(client), body: NSNull())
                if connection.json { return Output.printJSON(["cleared": true]) }
                Swift.print("Budget cleared.")
            }
        }
    }

    struct Quota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the tokens a tenant's tier bundles this month, and what is used and reserved of them."
        )

        @OptionGroup var connection: AdminOptions

        @Option(help: "The tenant's id or name (default: your own, for an org role).")
        var tenant: String?

        func run() async throws {
            try await reportingErrors {
                let client = try connection.client()
                let quota = try await client.send(.GET, "/admin/v1/tenants/\(try await client.tenantID(tenant))/quota")
                if connection.json { return Output.printJSON(quota) }
                Swift.print("""
                    Quota of tenant \(Output.text(quota["tenant_id"])) (tier \(Output.text(quota["tier"]))): \
                    \(Output.text(quota["monthly_quota_tokens"])) tokens a month, then \(Output.text(quota["on_quota_exhausted"])), \
                    period \(Output.text(quota["period_start"])) to \(Output.text(quota["resets_at"]))
                    """)
                Output.printTable([quota], columns: ["used_tokens", "reserved_tokens", "remaining_tokens", "overage_per_million"])
            }
        }
    }

    static func print(_ budget: [String: Any]) {
        let owner = budget["scope"] as? String == "key"
            ? "key \(Output.text(budget["key_id"]))" : "tenant \(Output.text(budget["tenant_id"]))"
        Swift.print("""
            Budget of \(owner): \(Output.text(budget["period"])), action \(Output.text(budget["action"])), \
            period \(Output.text(budget["period_start"])) to \(Output.text(budget["resets_at"]))
            """)
        let rows = [("tokens", "tokens"), ("micros", "micros")].map { unit, suffix -> [String: Any] in
            [
                "unit": unit,
                "limit": budget["limit_\(suffix)"] ?? NSNull(),
                "used": budget["used_\(suffix)"] ?? NSNull(),
                "reserved": budget["reserved_\(suffix)"] ?? NSNull(),
                "remaining": budget["remaining_\(suffix)"] ?? NSNull(),
            ]
        }
        Output.printTable(rows, columns: ["unit", "limit", "used", "reserved", "remaining"])
        let thresholds = (budget["soft_thresholds"] as? [Any] ?? []).map { Output.text($0) }.joined(separator: ", ")
        Swift.print("Alerts at: \(thresholds.isEmpty ? "none" : thresholds) of the limit")
    }
}
