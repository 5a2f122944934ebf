/// A stage parameter's declared type, with its allowed values.
public enum ParameterKind: Sendable, Equatable {
    case integer(ClosedRange<Int>?)
    case number(ClosedRange<Double>?)
    case boolean
    case string
    case choice([String])

    public var typeName: String {
        switch self {
        case .integer: "an integer"
        case .number: "a number"
        case .boolean: "true or false"
        case .string: "a string"
        case .choice(let c): "one of " + c.map { "'\($0)'" }.joined(separator: ", ")
        }
    }
}

/// A parameter value as written in a pipeline file or on a command line.
public enum ParameterValue: Sendable, Equatable, CustomStringConvertible {
    case integer(Int)
    case number(Double)
    case boolean(Bool)
    case string(String)

    public var description: String {
        switch self {
        case .integer(let v): "\(v)"
        case .number(let v): "\(v)"
        case .boolean(let v): "\(v)"
        case .string(let v): "\"\(v)\""
        }
    }
}

/// One parameter a stage accepts: type, unit, default, range and a one-line doc.
public struct ParameterSpec: Sendable, Equatable {
    public var name: String
    public var kind: ParameterKind
    public var unit: String?
    /// nil: the parameter must be given.
    public var defaultValue: ParameterValue?
    public var doc: String

    public init(_ name: String, _ kind: ParameterKind, unit: String? = nil, default defaultValue: ParameterValue?, doc: String) {
        self.name = name
        self.kind = kind
        self.unit = unit
        self.defaultValue = defaultValue
        self.doc = doc
    }

    public enum Checked: Equatable {
        case valid(ParameterValue)
        case invalid(String)
    }

    /// The value checked against the declaration (an integer given for a
    /// number becomes a number), or the problem with it.
    public func check(_ value: ParameterValue) -> Checked {
        switch (kind, value) {
        case (.integer(let range), .integer(let v)):
            if let range, !range.contains(v) { return .invalid("\(v) is out of range \(range.lowerBound)...\(range.upperBound)") }
            return .valid(value)
        case (.number, .integer(let v)):
            return check(.number(Double(v)))
        case (.number(let range), .number(let v)):
            guard v.isFinite else { return .invalid("\(v) is not a finite number") }
            if let range, !range.contains(v) { return .invalid("\(v) is out of range \(range.lowerBound)...\(range.upperBound)") }
            return .valid(value)
        case (.boolean, .boolean), (.string, .string):
            return .valid(value)
        case (.choice(let choices), .string(let v)):
            guard choices.contains(v) else {
                let near = nearest(v, in: choices).map { " (did you mean '\($0)'?)" } ?? ""
                return .invalid("'\(v)' is not \(kind.typeName)\(near)")
            }
            return .valid(value)
        default:
            return .invalid("expected \(kind.typeName), got \(value)")
        }
    }
}

/// A stage's parameters after validation: every declared one has a value.
public struct ParameterSet: Sendable, Equatable {
    public private(set) var values: [String: ParameterValue]

    public init(_ values: [String: ParameterValue]) { self.values = values }

    public func integer(_ name: String) -> Int {
        guard case .integer(let v) = values[name] else { preconditionFailure("parameter \(name) is not a validated integer") }
        return v
    }

    public func number(_ name: String) -> Double {
        switch values[name] {
        case .number(let v): return v
        case .integer(let v): return Double(v)
        default: preconditionFailure("parameter \(name) is not a validated number")
        }
    }

    public func boolean(_ name: String) -> Bool {
        guard case .boolean(let v) = values[name] else { preconditionFailure("parameter \(name) is not a validated boolean") }
        return v
    }

    public func string(_ name: String) -> String {
        guard case .string(let v) = values[name] else { preconditionFailure("parameter \(name) is not a validated string") }
        return v
    }
}

/// The closest of `candidates` to `word` by edit distance, if close enough
/// to be the likely intent (at most a third of the word's letters differ).
public func nearest(_ word: String, in candidates: [String]) -> String? {
    let w = Array(word.lowercased())
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(w, Array(c.lowercased()))
        if best == nil || d < best!.1 { best = (c, d) }
    }
    guard let best, best.1 <= max(2, w.count / 3) else { return nil }
    return best.0
}

func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count), current = previous
    for i in 1...a.count {
        current[0] = i
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

extension ParameterSpec {
    /// The declaration as JSON gives it: name, type (integer, number,
    /// boolean, string, choice), min and max or choices, unit and doc.
    public var declaration: [String: Any] {
        var d: [String: Any] = ["name": name, "doc": doc]
        if let unit { d["unit"] = unit }
        switch kind {
        case .integer(let r):
            d["type"] = "integer"
            if let r { d["min"] = r.lowerBound; d["max"] = r.upperBound }
        case .number(let r):
            d["type"] = "number"
            if let r { d["min"] = r.lowerBound; d["max"] = r.upperBound }
        case .boolean: d["type"] = "boolean"
        case .string: d["type"] = "string"
        case .choice(let c): d["type"] = "choice"; d["choices"] = c
        }
        return d
    }
}

/// Problems with resolved parameters that their declared ranges cannot
/// express (a malformed "y,x", a crop smaller than the output).
public struct ParameterProblems: Error, CustomStringConvertible {
    public var problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "; ") }
}

extension ParameterSet {
    /// A number where 0 means "not given".
    public func givenNumber(_ name: String) -> Double? { number(name) == 0 ? nil : number(name) }
    public func givenInteger(_ name: String) -> Int? { integer(name) == 0 ? nil : integer(name) }
    public func givenString(_ name: String) -> String? { string(name).isEmpty ? nil : string(name) }

    /// "RxC", or nil for "".
    public func tileGrid(_ name: String) throws(ParameterProblems) -> (rows: Int, columns: Int)? {
        guard let text = givenString(name) else { return nil }
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { throw ParameterProblems(["\(name): must look like \"2x3\", got \"\(text)\""]) }
        return (parts[0], parts[1])
    }
}
