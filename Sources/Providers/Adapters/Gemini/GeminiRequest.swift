/// A `generateContent` / `streamGenerateContent` request body as Gemini's REST API takes
/// it: the lowerCamelCase JSON of `GenerateContentRequest` in generative_service.proto.
/// Only the fields an OpenAI Chat Completions request can fill are modelled.
struct GeminiRequest: Encodable, Sendable, Equatable {
    var contents: [GeminiContent]
    var systemInstruction: GeminiContent?
    var tools: [GeminiTool]?
    var toolConfig: GeminiToolConfig?
    var generationConfig: GeminiGenerationConfig?
}

/// One turn of the conversation (`Content`); `role` is `user` or `model`, and absent
/// for the system instruction.
struct GeminiContent: Encodable, Sendable, Equatable {
    var role: String?
    var parts: [GeminiPart]
}

/// One `Part`: exactly one of the data fields is set.
struct GeminiPart: Encodable, Sendable, Equatable {
    var text: String?
    var inlineData: GeminiBlob?
    var functionCall: GeminiFunctionCall?
    var functionResponse: GeminiFunctionResponse?
    var thoughtSignature: String?

    static func text(_ text: String) -> GeminiPart {
        GeminiPart(text: text)
    }
}

/// Inline media bytes (`Blob`), base64 as in the proto's JSON mapping of `bytes`.
struct GeminiBlob: Encodable, Sendable, Equatable {
    var mimeType: String
    var data: String
}

struct GeminiFunctionCall: Encodable, Sendable, Equatable {
    var id: String?
    var name: String
    /// A JSON object (`google.protobuf.Struct`).
    var args: JSONValue
}

struct GeminiFunctionResponse: Encodable, Sendable, Equatable {
    var id: String?
    var name: String
    /// A JSON object (`google.protobuf.Struct`).
    var response: JSONValue
}

struct GeminiTool: Encodable, Sendable, Equatable {
    var functionDeclarations: [GeminiFunctionDeclaration]
}

struct GeminiFunctionDeclaration: Encodable, Sendable, Equatable {
    var name: String
    /// Required by the proto; empty when the client gave none.
    var description: String
    /// `parameters_json_schema` takes JSON Schema as is, so OpenAI's `parameters` need no
    /// conversion to the OpenAPI subset that `parameters` (a `Schema`) would want.
    var parametersJsonSchema: JSONValue?
}

struct GeminiToolConfig: Encodable, Sendable, Equatable {
    struct FunctionCallingConfig: Encodable, Sendable, Equatable {
        /// `AUTO`, `ANY` or `NONE`.
        var mode: String
        var allowedFunctionNames: [String]?
    }

    var functionCallingConfig: FunctionCallingConfig
}

/// `GenerationConfig`. Absent fields take the model's defaults.
struct GeminiGenerationConfig: Encodable, Sendable, Equatable {
    var candidateCount: Int?
    var stopSequences: [String]?
    var maxOutputTokens: Int?
    var temperature: Double?
    var topP: Double?
    var seed: Int?
    var responseMimeType: String?
    /// JSON name of `response_json_schema_ordered`, the JSON Schema form the proto
    /// recommends (`_responseJsonSchema` is marked internal).
    var responseJsonSchema: JSONValue?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var thinkingConfig: GeminiThinkingConfig?

    var isEmpty: Bool { self == GeminiGenerationConfig() }
}

/// `ThinkingConfig`: whether thought summaries come with the answer, and how much the
/// model thinks (a token budget, or for Gemini 3 a level).
struct GeminiThinkingConfig: Encodable, Sendable, Equatable {
    var includeThoughts: Bool?
    var thinkingBudget: Int?
    var thinkingLevel: String?
}
