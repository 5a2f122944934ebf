import Foundation
import Parameters

/// A JSON document as written, for validation with key paths (Foundation's
/// JSONSerialization would blur booleans and numbers).
public indirect enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .integer(v) }
        else if let v = try? c.decode(Double.self) { self = .number(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }

    var parameterValue: ParameterValue? {
        switch self {
        case .bool(let v): .boolean(v)
        case .integer(let v): .integer(v)
        case .number(let v): .number(v)
        case .string(let v): .string(v)
        default: nil
        }
    }

    /// Sets the value at a key path; in a list of objects, a key selects the
    /// object whose "name" it is (stages.solver). Returns the problem, if any.
    mutating func set(_ value: JSONValue, at path: [String]) -> String? {
        guard let key = path.first else { self = value; return nil }
        let rest = Array(path.dropFirst())
        switch self {
        case .object(var o):
            if rest.isEmpty { o[key] = value } else {
                var child = o[key] ?? .object([:])
                if let problem = child.set(value, at: rest) { return problem }
                o[key] = child
            }
            self = .object(o)
            return nil
        case .array(var items):
            guard let i = items.firstIndex(where: { if case .object(let o) = $0 { o["name"] == .string(key) } else { false } }) else {
                return "no entry named '\(key)'"
            }
            if let problem = items[i].set(value, at: rest) { return problem }
            self = .array(items)
            return nil
        default:
            return "'\(key)' is inside \(typeName), not an object"
        }
    }
}
