import Billing
import Foundation
import Testing

@testable import Proxy

/// The cost-allocation routes through the live server: JSON and CSV of one query agree,
/// bad parameters are named 400s, and each role sees what the permission matrix allows.
@Suite("Report routes")
struct ReportRouteTests {
    static let window = "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z"
    static let oddModel = #"chat "large", v2"#

    /// An event of `tenant` on 2026-03-01, of `user`'s key.
    static func event(
        _ id: String, tenant: String, user: String? = nil, model: String = "chat-small", hour: Int = 10, cost: Int64 = 1_000,
        currency: String = "USD", pool: String? = nil, slotMilliseconds: Int? = nil, billedUnder terms: BillingTerms? = nil
    ) -> UsageEvent {
        UsageEvent(
            requestID: id, tenantID: tenant, tenantKeyID: user.map { "key_\($0)" }, model: model, deployment: pool == nil ? "openai-gpt-4o" : "sim-llama",
            provider: pool == nil ? "openai" : "sim", promptTokens: 100, cachedTokens: 10, completionTokens: 50, reasoningTokens: 0,
            tokensEstimated: false, costMicros: cost, currency: currency, status: 200,
            startedAt: Date(timeIntervalSince1970: 1_772_323_200 + Double(hour * 3600 + 60)), timeToFirstTokenMilliseconds: 10,
            durationMilliseconds: 100, streamed: false, enginePool: pool, slotMilliseconds: slotMilliseconds, userID: user, terms: terms
        )
    }

    @Test("CSV and JSON of the same query agree, page by page, with the totals on the CSV's last page")
    func csvMatchesJSON() async throws {
        try await LiveHarness.run { harness in
            let terms = BillingTerms(monthlyQuotaTokens: 0, overagePerMillion: 2_000_000)
            try await harness.ledger.record([
                Self.event("r1", tenant: "ten_a", model: Self.oddModel, cost: 1_234, billedUnder: terms),
                Self.event("r2", tenant: "ten_a", model: "chat-small", hour: 11, cost: 99),
                Self.event("r3", tenant: "ten_b", model: Self.oddModel, hour: 12, cost: 5_000, currency: "EUR"),
                Self.event("r4", tenant: "ten_b", model: "embed\nsmall", hour: 13, cost: 7),
                Self.event("r5", tenant: "ten_c", model: "chat-small", hour: 23, cost: 1),
            ])
            let query = "/admin/v1/reports/allocation?\(Self.window)&group_by=tenant,model"
            let json = try await harness.admin(.GET, query)
            #expect(json.status == 200, "\(json.text)")
            let body = try json.json()
            #expect(body["object"] as? String == "allocation_report")
            #expect(body["group_by"] as? [String] == ["tenant", "model"])
            #expect(body["currencies"] as? [String] == ["EUR", "USD"])
            #expect(body["next_cursor"] is NSNull)
            let data = try #require(body["data"] as? [[String: Any]])
            let totals = try #require(body["totals"] as? [[String: Any]])
            #expect(data.count == 5 && totals.count == 2)
            #expect(data.first?["billed_micros"] as? Int == 300)
            #expect(data.last?["billed_micros"] is NSNull)

            let csv = try await harness.admin(.GET, query + "&format=csv")
            #expect(csv.status == 200)
            #expect(csv.headers.first(name: "content-type") == "text/csv; charset=utf-8")
            #expect(csv.headers.first(name: "x-next-cursor") == nil)
            // Quoted where it must be, quotes doubled, every line ended by CRLF.
            #expect(csv.text.contains(#"group,ten_a,"chat ""large"", v2",USD,"#))
            #expect(csv.text.contains("\"embed\nsmall\""))
            #expect(csv.text.hasSuffix("\r\n"))
            let records = try CSV.parse(csv.text)
            let header = try #require(records.first)
            #expect(header == ["row", "tenant", "model", "currency", "requests", "prompt_tokens", "cached_tokens", "completion_tokens",
                               "reasoning_tokens", "estimated_requests", "cost_micros", "billed_micros", "margin_micros", "slot_ms", "slot_seconds"])
            let rows = records.dropFirst().map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
            #expect(rows.map { $0["row"] } == Array(repeating: "group", count: 5) + ["total", "total"])
            for (csvRow, jsonRow) in zip(rows, data + totals) {
                for column in header where column != "row" {
                    #expect(csvRow[column] == Self.csvText(jsonRow[column], column: column), "\(column)")
                }
            }

            // Pages of two: the cursor in a header, the totals on the last page only.
            var cursor: String?
            var paged: [[String]] = []
            var pages = 0
            repeat {
                let page = try await harness.admin(.GET, query + "&format=csv&limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == 200, "\(page.text)")
                let parsed = try CSV.parse(page.text)
                #expect(parsed.first == header)
                cursor = page.headers.first(name: "x-next-cursor")
                let kinds = Set(parsed.dropFirst().map { $0.first ?? "" })
                #expect(kinds.contains("total") == (cursor == nil))
                paged += parsed.dropFirst()
                pages += 1
            } while cursor != nil && pages < 10
            #expect(pages == 3)
            #expect(paged == Array(records.dropFirst()))
        }
    }

    /// What the CSV holds for a JSON value: integers as they are, null as empty.
    static func csvText(_ value: Any?, column: String) -> String {
        switch value {
        case nil, is NSNull: ""
        case let text as String: text
        case let number as NSNumber where column == "slot_seconds": AllocationCSV.seconds(milliseconds: Int64((number.doubleValue * 1000).rounded()))
        case let number as NSNumber: number.stringValue
        default: "\(value ?? "")"
        }
    }

    @Test("bad from, to, group_by, cursor, format, limit or include_gpu are named 400s")
    func badParameters() async throws {
        try await LiveHarness.run { harness in
            let cases: [(String, String)] = [
                ("from=2026-03-01T00:30:00Z&to=2026-03-02T00:00:00Z", "from"),
                ("from=yesterday", "from"),
                ("from=2026-03-01&to=2026-03-01T12:00:01Z", "to"),
                ("from=2026-03-02&to=2026-03-01", "from"),
                ("\(Self.window)&group_by=tenant,planet", "group_by"),
                ("\(Self.window)&group_by=model,model", "group_by"),
                ("\(Self.window)&cursor=%25%25%25", "cursor"),
                // A well-formed cursor of another grouping: base64url of ["group","USD"].
                ("\(Self.window)&group_by=tenant,model&cursor=WyJncm91cCIsIlVTRCJd", "cursor"),
                ("\(Self.window)&format=xml", "format"),
                ("\(Self.window)&limit=0", "limit"),
                ("\(Self.window)&limit=10001", "limit"),
                ("\(Self.window)&include_gpu=maybe", "include_gpu"),
            ]
            for (query, parameter) in cases {
                let response = try await harness.admin(.GET, "/admin/v1/reports/allocation?\(query)")
                #expect(response.status == 400, "\(query): \(response.text)")
                let error = try response.error()
                #expect(error["param"] as? String == parameter, "\(query): \(response.text)")
                #expect(error["type"] as? String == "invalid_request_error")
            }
            // The default window ends at the next whole hour and spans 30 days.
            let defaulted = try await harness.admin(.GET, "/admin/v1/reports/allocation")
            #expect(defaulted.status == 200, "\(defaulted.text)")
            let body = try defaulted.json()
            let from = try #require((body["from"] as? String).flatMap { try? Date($0, strategy: .iso8601) })
            let to = try #require((body["to"] as? String).flatMap { try? Date($0, strategy: .iso8601) })
            #expect(to.timeIntervalSince(from) == 30 * 86_400)
            #expect(AllocationQuery.isWholeHour(to) && to > Date() && to.timeIntervalSinceNow <= 3_600)
            #expect(body["group_by"] as? [String] == ["tenant"])
        }
    }

    @Test("one metered request by its id: whole for the platform and its org admin, an org user's own only, 404 otherwise")
    func usageEventByID() async throws {
        try await LiveHarness.run { harness in
            let home = try await harness.makeTenant()
            let away = try await harness.makeTenant()
            let orgAdmin = try await harness.signUp(tenantID: home.tenantID, role: "org_admin")
            let orgUser = try await harness.signUp(tenantID: home.tenantID, role: "org_user")
            let strangerAdmin = try await harness.signUp(tenantID: away.tenantID, role: "org_admin")
            let adminID = try await Self.userID(harness, orgAdmin)
            let userID = try await Self.userID(harness, orgUser)
            let analyst = try await Self.analyst(harness)
            try await harness.ledger.record([
                Self.event("req_admins", tenant: home.tenantID, user: adminID, cost: 1_234, pool: "fast", slotMilliseconds: 4_321),
                Self.event("req_users", tenant: home.tenantID, user: userID, cost: 5),
            ])
            func status(_ id: String, _ token: String) async throws -> Int {
                try await harness.admin(.GET, "/admin/v1/usage/events/\(id)", token: token).status
            }
            let whole = try await harness.admin(.GET, "/admin/v1/usage/events/req_admins")
            #expect(whole.status == 200, "\(whole.text)")
            let body = try whole.json()
            #expect(body["object"] as? String == "usage_event")
            #expect(body["request_id"] as? String == "req_admins")
            #expect(body["tenant_id"] as? String == home.tenantID)
            #expect(body["user_id"] as? String == adminID)
            #expect(body["cost_micros"] as? Int == 1_234)
            #expect(body["engine_pool"] as? String == "fast")
            #expect(body["slot_ms"] as? Int == 4_321)
            #expect(body["prompt_tokens"] as? Int == 100)
            #expect(try await status("req_admins", analyst) == 200)
            #expect(try await status("req_admins", orgAdmin) == 200)
            #expect(try await status("req_users", orgAdmin) == 200)
            #expect(try await status("req_users", orgUser) == 200)
            #expect(try await status("req_admins", orgUser) == 404, "another user's request")
            #expect(try await status("req_admins", strangerAdmin) == 404, "another tenant's request")
            #expect(try await status("req_nowhere", LiveHarness.adminToken) == 404)
            #expect(try await harness.admin(.GET, "/admin/v1/usage/events/req_admins", token: "sy-session-forged").status == 401)
        }
    }

    @Test("org admins see their tenant, org users their own keys, analysts everything; the GPU report is the platform's")
    func permissions() async throws {
        try await LiveHarness.run { harness in
            let home = try await harness.makeTenant()
            let away = try await harness.makeTenant()
            let orgAdmin = try await harness.signUp(tenantID: home.tenantID, role: "org_admin")
            let orgUser = try await harness.signUp(tenantID: home.tenantID, role: "org_user")
            let adminID = try await Self.userID(harness, orgAdmin)
            let userID = try await Self.userID(harness, orgUser)
            let analyst = try await Self.analyst(harness)
            try await harness.ledger.record([
                Self.event("h1", tenant: home.tenantID, user: adminID, cost: 100, pool: "fast", slotMilliseconds: 1_800_000),
                Self.event("h2", tenant: home.tenantID, user: userID, cost: 20, pool: "fast", slotMilliseconds: 600_000),
                Self.event("a1", tenant: away.tenantID, user: nil, cost: 3),
            ])
            func tenants(_ token: String, _ extra: String = "") async throws -> (Int, [String]) {
                let response = try await harness.admin(.GET, "/admin/v1/reports/allocation?\(Self.window)&group_by=tenant,user\(extra)", token: token)
                let rows = (try? response.json()["data"] as? [[String: Any]]) ?? []
                return (response.status, rows.map { "\($0["tenant"] ?? "")/\($0["user"] ?? "")" })
            }
            let everyone = ["\(home.tenantID)/\(adminID)", "\(home.tenantID)/\(userID)", "\(away.tenantID)/"].sorted()
            #expect(try await tenants(LiveHarness.adminToken) == (200, everyone))
            #expect(try await tenants(analyst) == (200, everyone))
            #expect(try await tenants(analyst, "&tenant=\(away.tenantID)") == (200, ["\(away.tenantID)/"]))
            #expect(try await tenants(orgAdmin) == (200, ["\(home.tenantID)/\(adminID)", "\(home.tenantID)/\(userID)"].sorted()))
            #expect(try await tenants(orgAdmin, "&tenant=\(away.tenantID)").0 == 404)
            #expect(try await tenants(orgUser) == (200, ["\(home.tenantID)/\(userID)"]))
            // An org admin's scoped report names the tenant, as usage does.
            let scoped = try await harness.admin(.GET, "/admin/v1/reports/allocation?\(Self.window)", token: orgAdmin)
            #expect(try scoped.json()["tenant"] as? String == home.tenantID)
            // With GPU cost, a tenant's report has no idle row: that is the platform's.
            let gpu = try await harness.admin(.GET, "/admin/v1/reports/allocation?\(Self.window)&include_gpu=true", token: orgAdmin)
            let gpuRows = try #require(try gpu.json()["data"] as? [[String: Any]])
            #expect(gpuRows.map { $0["row"] as? String } == ["group"])
            // The fast pool: 1 replica of 4 slots at 3.6 USD an hour; 24 h cost 86.4 USD.
            // The home tenant held 40 slot-minutes of 96 slot-hours: 86.4 × 2400 / 345600.
            #expect(gpuRows.first?["gpu_cost_micros"] as? Int == 600_000)
            #expect(gpuRows.first?["cost_micros"] as? Int == 0)

            let path = "/admin/v1/reports/gpu?pool=fast&\(Self.window)"
            for token in [orgAdmin, orgUser] {
                let refused = try await harness.admin(.GET, path, token: token)
                #expect(refused.status == 403)
                #expect(try refused.error()["code"] as? String == "permission_denied")
            }
            let report = try await harness.admin(.GET, path, token: analyst)
            #expect(report.status == 200, "\(report.text)")
            let body = try report.json()
            #expect(body["object"] as? String == "gpu_report")
            #expect(body["cost_micros"] as? Int == 86_400_000)
            let rows = try #require(body["data"] as? [[String: Any]])
            #expect(rows.map { $0["row"] as? String } == ["tenant", "idle"])
            #expect(rows.map { $0["cost_micros"] as? Int } == [600_000, 85_800_000])
            #expect((body["totals"] as? [String: Any])?["cost_micros"] as? Int == 86_400_000)
            #expect(try await harness.admin(.GET, "/admin/v1/reports/gpu?pool=nowhere").status == 404)
            let uncosted = try await harness.admin(.GET, "/admin/v1/reports/gpu?pool=slow")
            #expect(uncosted.status == 400)
            #expect(try uncosted.error()["param"] as? String == "pool")
            #expect(try await harness.admin(.GET, "/admin/v1/reports/gpu").status == 400)
            #expect(try await harness.admin(.GET, "/admin/v1/reports/gpu?pool=fast&from=2026-03-01T00:00:01Z").status == 400)
        }
    }

    static func userID(_ harness: LiveHarness, _ session: String) async throws -> String {
        let me = try await harness.admin(.GET, "/auth/me", token: session)
        return try #require((try me.json()["user"] as? [String: Any])?["id"] as? String)
    }

    /// A signed-in analyst's session.
    static func analyst(_ harness: LiveHarness) async throws -> String {
        let email = "analyst-\(UUID().uuidString.prefix(6))@example.com"
        let password = "correct horse battery"
        let made = try await harness.admin(
            .POST, "/admin/v1/users", body: #"{"email":"\#(email)","name":"Analyst","role":"analyst","password":"\#(password)"}"#
        )
        #expect(made.status == 201, "\(made.text)")
        let login = try await harness.send(.POST, "/auth/login", body: #"{"email":"\#(email)","password":"\#(password)"}"#)
        return try #require(try login.json()["token"] as? String)
    }
}

/// An RFC 4180 reader, strict enough to catch a writer's mistakes: records end in CRLF,
/// a quoted field may hold commas, quotes (doubled) and line breaks.
enum CSV {
    struct Malformed: Error {}

    static func parse(_ text: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = String.UnicodeScalarView()
        var scalars = Array(text.unicodeScalars)[...]
        var quoted = false
        var wasQuoted = false
        while let scalar = scalars.popFirst() {
            if quoted {
                if scalar == "\"" {
                    if scalars.first == "\"" {
                        field.append(scalars.removeFirst())
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"":
                guard field.isEmpty, !wasQuoted else { throw Malformed() }
                quoted = true
                wasQuoted = true
            case ",":
                record.append(String(field))
                field = String.UnicodeScalarView()
                wasQuoted = false
            case "\r":
                guard scalars.popFirst() == "\n" else { throw Malformed() }
                record.append(String(field))
                records.append(record)
                record = []
                field = String.UnicodeScalarView()
                wasQuoted = false
            case "\n":
                throw Malformed()
            default:
                guard !wasQuoted else { throw Malformed() }
                field.append(scalar)
            }
        }
        guard !quoted, record.isEmpty, field.isEmpty else { throw Malformed() }
        return records
    }
}
