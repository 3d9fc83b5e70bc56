/// Token counters of the simulated engine and their Prometheus exposition under vLLM's
/// metric names, so the proxy's engine-pool scraper reads the simulator as it reads vLLM.
actor SimulatorMetrics {
    private var promptTokens = 0
    private var generationTokens = 0

    /// Counts one finished (or abandoned) request.
    /// - Parameters:
    ///   - promptTokens: Tokens of its prompt.
    ///   - generationTokens: Tokens actually generated before it ended.
    func record(promptTokens: Int, generationTokens: Int) {
        self.promptTokens += promptTokens
        self.generationTokens += generationTokens
    }

    /// The metrics in Prometheus text format 0.0.4.
    /// - Parameters:
    ///   - modelName: Value of the `model_name` label.
    ///   - slots: Current slot counts.
    func exposition(modelName: String, slots: SlotQueue.Snapshot) -> String {
        Self.exposition(
            modelName: modelName,
            slots: slots,
            promptTokens: promptTokens,
            generationTokens: generationTokens
        )
    }

    static func exposition(modelName: String, slots: SlotQueue.Snapshot, promptTokens: Int, generationTokens: Int) -> String {
        let label = "{model_name=\(labelValue(modelName))}"
        let usage = Double(slots.running) / Double(max(slots.slots, 1))
        var text = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name)\(label) \(value)\n"
        }
        family("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", Double(slots.running))
        family("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", Double(slots.waiting))
        family("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", min(usage, 1))
        family("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", Double(promptTokens))
        family("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", Double(generationTokens))
        return text
    }

    /// A quoted label value, escaped as the exposition format requires.
    private static func labelValue(_ value: String) -> String {
        var escaped = "\""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }
}
