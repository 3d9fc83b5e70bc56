extension OpenAIError {
    /// The 400 for a JSON body that does not fit the expected shape, naming the field as
    /// the client wrote it (`messages[2].content`, `expires_at`). For bodies decoded with
    /// `convertFromSnakeCase`.
    public init(decoding error: any Error) {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            let path = Self.fieldPath(context.codingPath + [key])
            self = .invalidRequest("Missing required parameter: '\(path)'.", param: path, code: "missing_required_parameter")
        case DecodingError.typeMismatch(_, let context):
            let path = Self.fieldPath(context.codingPath)
            self = .invalidRequest("Invalid type for '\(path)'.", param: path, code: "invalid_type")
        case DecodingError.valueNotFound(_, let context):
            let path = Self.fieldPath(context.codingPath)
            self = .invalidRequest("Invalid value for '\(path)': null is not allowed.", param: path, code: "invalid_value")
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            let path = Self.fieldPath(context.codingPath)
            self = .invalidRequest("Invalid value for '\(path)': \(context.debugDescription)", param: path, code: "invalid_value")
        default:
            self = .invalidRequest("We could not parse the JSON body of your request; expected a JSON object.")
        }
    }

    /// `messages[2].content`: a coding path as the client wrote it.
    static func fieldPath(_ path: [any CodingKey]) -> String {
        var result = ""
        for key in path {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += (result.isEmpty ? "" : ".") + fieldName(key)
            }
        }
        return result
    }

    /// A key in the client's snake_case.
    static func fieldName(_ key: any CodingKey) -> String {
        var result = ""
        for character in key.stringValue {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}
