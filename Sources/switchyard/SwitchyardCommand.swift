import ArgumentParser

@main
struct SwitchyardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A multi-tenant, multi-provider OpenAI-compatible model proxy.",
        subcommands: [
            ServeCommand.self,
            MeterCommand.self,
            LoginCommand.self,
            LogoutCommand.self,
            WhoamiCommand.self,
            TenantCommand.self,
            KeyCommand.self,
            ProviderKeyCommand.self,
            UsageCommand.self,
            ReportCommand.self,
            BudgetCommand.self,
            PoolsCommand.self,
            UserCommand.self,
            TokenCommand.self,
            AuditCommand.self,
            SimEngineCommand.self,
        ]
    )
}
