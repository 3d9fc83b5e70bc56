import Foundation

/// A problem in `providers.json`, with the JSON path where it is.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Where the problem is, e.g. `$.providers[2].kind`.
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// Reads one JSON object of the configuration, tracking the path for error messages and
/// rejecting keys it does not know (so a typo is an error, not a silently ignored field).
struct ConfigObject {
    let path: String
    private let dictionary: [String: Any]
    private var read: Set<String> = ["$schema", "description"]

    init(_ value: Any?, path: String) throws(ConfigurationError) {
        guard let dictionary = value as? [String: Any] else {
            throw ConfigurationError(path: path, message: "expected an object")
        }
        self.dictionary = dictionary
        self.path = path
    }

    func childPath(_ key: String) -> String { "\(path).\(key)" }

    mutating func has(_ key: String) -> Bool {
        read.insert(key)
        return dictionary[key] != nil && !(dictionary[key] is NSNullLike)
    }

    mutating func string(_ key: String) throws(ConfigurationError) -> String {
        guard let value = try optionalString(key) else {
            throw ConfigurationError(path: childPath(key), message: "is required")
        }
        return value
    }

    mutating func optionalString(_ key: String) throws(ConfigurationError) -> String? {
        read.insert(key)
        guard let raw = dictionary[key], !(raw is NSNullLike) else { return nil }
        guard let value = raw as? String else {
            throw ConfigurationError(path: childPath(key), message: "expected a string")
        }
        guard !value.isEmpty else {
            throw ConfigurationError(path: childPath(key), message: "must not be empty")
        }
        return value
    }

    mutating func integer(
        _ key: String, default defaultValue: Int? = nil, minimum: Int = Int.min, maximum: Int = Int.max
    ) throws(ConfigurationError) -> Int {
        read.insert(key)
        guard let raw = dictionary[key], !(raw is NSNullLike) else {
            if let defaultValue { return defaultValue }
            throw ConfigurationError(path: childPath(key), message: "is required")
        }
        guard let number = raw as? NSNumberLike, let value = number.exactInteger else {
            throw ConfigurationError(path: childPath(key), message: "expected an integer")
        }
        guard value >= minimum else {
            throw ConfigurationError(path: childPath(key), message: "must be at least \(minimum)")
        }
        guard value <= maximum else {
            throw ConfigurationError(path: childPath(key), message: "must be at most \(maximum)")
        }
        return value
    }

    /// A number in `0...1`, such as a share.
    mutating func fraction(_ key: String, default defaultValue: Double) throws(ConfigurationError) -> Double {
        read.insert(key)
        guard let raw = dictionary[key], !(raw is NSNullLike) else { return defaultValue }
        guard let number = raw as? NSNumberLike, String(cString: number.objCType) != "c" else {
            throw ConfigurationError(path: childPath(key), message: "expected a number from 0 to 1")
        }
        let value = number.doubleValue
        guard value.isFinite, value >= 0, value <= 1 else {
            throw ConfigurationError(path: childPath(key), message: "must be from 0 to 1")
        }
        return value
    }

    mutating func boolean(_ key: String, default defaultValue: Bool) throws(ConfigurationError) -> Bool {
        read.insert(key)
        guard let raw = dictionary[key], !(raw is NSNullLike) else { return defaultValue }
        guard let number = raw as? NSNumberLike, String(cString: number.objCType) == "c" else {
            throw ConfigurationError(path: childPath(key), message: "expected true or false")
        }
        return number.boolValue
    }

    /// One of `allowed`, or `defaultValue` when absent.
    mutating func choice(_ key: String, of allowed: [String], default defaultValue: String) throws(ConfigurationError) -> String {
        guard let value = try optionalString(key) else { return defaultValue }
        guard allowed.contains(value) else {
            throw ConfigurationError(path: childPath(key), message: "'\(value)' is not one of \(allowed.joined(separator: ", "))")
        }
        return value
    }

    mutating func array(_ key: String, required: Bool = true) throws(ConfigurationError) -> [Any] {
        read.insert(key)
        guard let raw = dictionary[key], !(raw is NSNullLike) else {
            if required { throw ConfigurationError(path: childPath(key), message: "is required") }
            return []
        }
        guard let array = raw as? [Any] else {
            throw ConfigurationError(path: childPath(key), message: "expected an array")
        }
        return array
    }

    mutating func stringArray(_ key: String, required: Bool = true) throws(ConfigurationError) -> [String] {
        let values = try array(key, required: required)
        var strings: [String] = []
        for (index, value) in values.enumerated() {
            guard let string = value as? String, !string.isEmpty else {
                throw ConfigurationError(path: "\(childPath(key))[\(index)]", message: "expected a non-empty string")
            }
            strings.append(string)
        }
        return strings
    }

    mutating func object(_ key: String) throws(ConfigurationError) -> ConfigObject? {
        read.insert(key)
        guard let raw = dictionary[key], !(raw is NSNullLike) else { return nil }
        return try ConfigObject(raw, path: childPath(key))
    }

    var keys: [String] { dictionary.keys.sorted() }

    /// Fails on the first key nothing asked for.
    func rejectUnknownKeys() throws(ConfigurationError) {
        for key in dictionary.keys.sorted() where !read.contains(key) {
            throw ConfigurationError(path: childPath(key), message: "unknown key '\(key)'")
        }
    }
}

/// JSONSerialization's null.
typealias NSNullLike = NSNull

/// JSONSerialization's numbers.
typealias NSNumberLike = NSNumber

extension NSNumber {
    /// The value when it is an integer (not a boolean, not a fraction).
    var exactInteger: Int? {
        // JSONSerialization makes booleans NSNumbers of type "c" (char).
        if String(cString: objCType) == "c" { return nil }
        let double = doubleValue
        guard double.rounded() == double, abs(double) < 9e15 else { return nil }
        return intValue
    }
}
