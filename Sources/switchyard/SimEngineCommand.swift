import ArgumentParser
import EngineSim
import Foundation

struct SimEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim-engine",
        abstract: "Run a simulated OpenAI-compatible GPU engine (vLLM-style), for demos, tests and benchmarks."
    )

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on (the shipped providers.json's engine pool expects 8001).")
    var port: Int = 8001

    @Option(help: "Milliseconds before the first token.")
    var ttftMs: Int = 200

    @Option(help: "Tokens generated per second per request; 0 for no pacing.")
    var tokensPerSecond: Double = 50

    @Option(help: "Requests generating at once; the rest queue.")
    var slots: Int = 4

    func validate() throws {
        guard ttftMs >= 0 else { throw ValidationError("--ttft-ms must be 0 or more.") }
        guard slots >= 1 else { throw ValidationError("--slots must be at least 1.") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535.") }
    }

    func run() async throws {
        let logger = makeLogger(environment: ProcessInfo.processInfo.environment, label: "sim-engine")
        let simulator = EngineSimulator(
            configuration: .init(
                host: host,
                port: port,
                timeToFirstToken: .milliseconds(ttftMs),
                tokensPerSecond: tokensPerSecond,
                slots: slots
            ),
            logger: logger
        )
        let host = host
        try await NetworkFailure.reportingListenFailure(host: host, port: port) { listening in
            try await simulator.makeApplication { boundPort in
                listening()
                logger.info("engine simulator listening", metadata: ["address": "http://\(host):\(boundPort)/v1"])
            }.runService()
        }
    }
}
