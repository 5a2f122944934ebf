import Foundation
import Parameters

/// Which ranks a stage asks for.
public enum RankRequest: Sendable, Equatable, CustomStringConvertible {
    /// Every rank of the job (shared with other stages).
    case all
    /// This many ranks of their own.
    case count(Int)
    /// This fraction of the job's ranks (at least one), of their own.
    case fraction(Double)
    /// The ranks no counted stage took.
    case rest
    /// The same ranks as another stage.
    case with(String)

    public var description: String {
        switch self {
        case .all: "all"
        case .count(let n): "\(n)"
        case .fraction(let f): "\(f)"
        case .rest: "rest"
        case .with(let s): "with:\(s)"
        }
    }
}

/// Intermediate products a pipeline may keep.
public enum SavedProduct: String, CaseIterable, Sendable {
    case raw, clean, reconstructed
}

/// One stage of a validated pipeline file.
public struct StageInstance: Sendable {
    public var name: String
    public var type: String
    public var ranks: RankRequest
    /// Input port -> (producing stage, its output port).
    public var inputs: [String: (stage: String, port: String)]
    public var parameters: ParameterSet
}

/// A pipeline file, checked against the registered stages.
public struct PipelineSpec: Sendable {
    public var file: String
    public var name: String
    public var summary: String
    public var endpoints: [String: String]
    public var outputDirectory: String
    public var save: [SavedProduct]
    public var stages: [StageInstance]
}

/// One problem found in a pipeline file, with the key path to it.
public struct ValidationIssue: Sendable, Equatable, CustomStringConvertible {
    public var keyPath: String
    public var problem: String
    public init(keyPath: String, problem: String) {
        self.keyPath = keyPath
        self.problem = problem
    }
    public var description: String { "\(keyPath): \(problem)" }
}

/// Every problem found, each naming the file and key path.
public struct PipelineValidationError: Error, CustomStringConvertible {
    public var file: String
    public var issues: [ValidationIssue]
    public init(file: String, issues: [ValidationIssue]) {
        self.file = file
        self.issues = issues
    }
    public var description: String { issues.map { "\(file): \($0)" }.joined(separator: "\n") }
}

extension PipelineSpec {
    static let topKeys = ["pipeline", "description", "endpoints", "output", "stages"]
    static let outputKeys = ["directory", "save"]
    static let reservedStageKeys = ["name", "type", "ranks", "inputs"]

    /// Reads and validates `path`; throws every problem at once.
    public static func load(_ path: String, registry: StageRegistry, overrides: [String] = []) throws -> PipelineSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineValidationError(file: path, issues: [.init(keyPath: "(file)", problem: "cannot be read")])
        }
        return try parse(data, file: path, registry: registry, overrides: overrides)
    }

    /// `overrides` are KEY.PATH=VALUE settings applied before validation
    /// (`stages.solver.beta=0.8`, `output.directory=runs/x`); a value that is
    /// not JSON is taken as a string.
    public static func parse(_ data: Data, file: String, registry: StageRegistry, overrides: [String] = []) throws -> PipelineSpec {
        var root: JSONValue
        // Strict JSON first: a trailing comma or a key given twice would otherwise pass unseen.
        if let problem = JSONSyntax.problem(in: data) {
            throw PipelineValidationError(file: file, issues: [.init(keyPath: "(file)", problem: "not valid JSON: \(problem)")])
        }
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            let detail = (error as? DecodingError).map { e -> String in
                if case .dataCorrupted(let c) = e { return (c.underlyingError as NSError?)?.userInfo["NSDebugDescription"] as? String ?? c.debugDescription }
                return "\(e)"
            } ?? "\(error)"
            throw PipelineValidationError(file: file, issues: [.init(keyPath: "(file)", problem: "not valid JSON: \(detail)")])
        }
        var v = Validator(registry: registry)
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                v.fail("(override '\(o)')", "must look like stages.NAME.KEY=VALUE")
                continue
            }
            let path = String(o[..<eq]), text = String(o[o.index(after: eq)...])
            let value = (try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))) ?? .string(text)
            if let problem = root.set(value, at: path.split(separator: ".").map(String.init)) { v.fail(path, "cannot override: \(problem)") }
        }
        let spec = v.pipeline(root, file: file)
        if !v.issues.isEmpty { throw PipelineValidationError(file: file, issues: v.issues) }
        return spec!
    }
}

/// Walks the document collecting problems; builds the spec when there are none.
struct Validator {
    let registry: StageRegistry
    var issues: [ValidationIssue] = []

    mutating func fail(_ path: String, _ problem: String) { issues.append(.init(keyPath: path, problem: problem)) }

    mutating func unknownKeys(_ object: [String: JSONValue], known: [String], at path: String) {
        for key in object.keys.sorted() where !known.contains(key) {
            let near = nearest(key, in: known).map { " (did you mean '\($0)'?)" } ?? ""
            fail(path.isEmpty ? key : "\(path).\(key)", "unknown key\(near); known keys: \(known.joined(separator: ", "))")
        }
    }

    mutating func string(_ value: JSONValue?, at path: String, required: Bool) -> String? {
        switch value {
        case .string(let s)?: return s
        case nil: if required { fail(path, "missing (a string)") }; return nil
        case let other?: fail(path, "expected a string, got \(other.typeName)"); return nil
        }
    }

    mutating func pipeline(_ root: JSONValue, file: String) -> PipelineSpec? {
        guard case .object(let top) = root else { fail("(top level)", "expected an object, got \(root.typeName)"); return nil }
        unknownKeys(top, known: PipelineSpec.topKeys, at: "")
        let name = string(top["pipeline"], at: "pipeline", required: true) ?? ""
        let summary = string(top["description"], at: "description", required: false) ?? ""

        var endpoints: [String: String] = [:]
        if let e = top["endpoints"] {
            if case .object(let o) = e {
                for (key, value) in o {
                    guard let s = string(value, at: "endpoints.\(key)", required: true) else { continue }
                    if s.range(of: #"^(tcp://[^:/]+:([0-9]{1,5}|\*)|ipc://.+|inproc://.+)$"#, options: .regularExpression) == nil {
                        fail("endpoints.\(key)", "'\(s)' is not a ZeroMQ endpoint like tcp://127.0.0.1:5555")
                    } else {
                        endpoints[key] = s
                    }
                }
            } else {
                fail("endpoints", "expected an object of name: endpoint, got \(e.typeName)")
            }
        }

        var directory = "runs", save: [SavedProduct] = [.reconstructed]
        if let o = top["output"] {
            if case .object(let out) = o {
                unknownKeys(out, known: PipelineSpec.outputKeys, at: "output")
                directory = string(out["directory"], at: "output.directory", required: false) ?? directory
                if let s = out["save"] {
                    if case .array(let items) = s {
                        save = []
                        for (i, item) in items.enumerated() {
                            let all = SavedProduct.allCases.map(\.rawValue)
                            guard let text = string(item, at: "output.save[\(i)]", required: true) else { continue }
                            if let p = SavedProduct(rawValue: text) { save.append(p) } else {
                                let near = nearest(text, in: all).map { " (did you mean '\($0)'?)" } ?? ""
                                fail("output.save[\(i)]", "'\(text)' is not one of \(all.joined(separator: ", "))\(near)")
                            }
                        }
                    } else {
                        fail("output.save", "expected a list of \(SavedProduct.allCases.map(\.rawValue).joined(separator: ", ")), got \(s.typeName)")
                    }
                }
            } else {
                fail("output", "expected an object, got \(o.typeName)")
            }
        }

        var stages: [StageInstance] = []
        switch top["stages"] {
        case .array(let list)?:
            if list.isEmpty { fail("stages", "the pipeline has no stages") }
            var seen: Set<String> = []
            for (i, item) in list.enumerated() {
                if let s = stage(item, index: i) {
                    if seen.contains(s.name) { fail("stages.\(s.name)", "a second stage with this name") }
                    seen.insert(s.name)
                    stages.append(s)
                }
            }
        case nil: fail("stages", "missing (a list of stages)")
        case let other?: fail("stages", "expected a list of stages, got \(other.typeName)")
        }
        connections(stages)
        let spec = PipelineSpec(file: file, name: name, summary: summary, endpoints: endpoints, outputDirectory: directory,
                                save: save, stages: stages)
        // Only stages whose parameters each passed their own checks.
        for s in stages where !issues.contains(where: { $0.keyPath.hasPrefix("stages.\(s.name).") }) {
            let type = registry.type(named: s.type)!
            let keys = type.description.parameters.map(\.name)
            for problem in type.problems(s.parameters, in: spec) {
                // "key: problem" goes to the key's path.
                if let colon = problem.range(of: ": "), !problem[..<colon.lowerBound].contains(" ") {
                    let key = String(problem[..<colon.lowerBound]), rest = String(problem[colon.upperBound...])
                    if keys.contains(key) { fail("stages.\(s.name).\(key)", rest); continue }
                    if key.hasPrefix("endpoints.") || key.hasPrefix("output.") { fail(key, rest); continue }
                }
                fail("stages.\(s.name)", problem)
            }
        }
        return spec
    }

    mutating func stage(_ value: JSONValue, index: Int) -> StageInstance? {
        guard case .object(let o) = value else { fail("stages[\(index)]", "expected an object, got \(value.typeName)"); return nil }
        guard let name = string(o["name"], at: "stages[\(index)].name", required: true) else { return nil }
        let path = "stages.\(name)"
        let typeName = string(o["type"], at: "\(path).type", required: false) ?? name
        guard let type = registry.type(named: typeName) else {
            let near = nearest(typeName, in: registry.names).map { " (did you mean '\($0)'?)" } ?? ""
            fail(o["type"] == nil ? path : "\(path).type",
                 "no stage type '\(typeName)'\(near); known types: \(registry.names.joined(separator: ", "))")
            return nil
        }
        let d = type.description
        unknownKeys(o, known: PipelineSpec.reservedStageKeys + d.parameters.map(\.name), at: path)

        var ranks = RankRequest.all
        switch o["ranks"] {
        case nil, .string("all")?: ranks = .all
        case .string("rest")?: ranks = .rest
        case .integer(let n)?:
            if n >= 1 { ranks = .count(n) } else { fail("\(path).ranks", "\(n) ranks: a group needs at least one") }
        case .number(let f)?:
            if f > 0 && f < 1 { ranks = .fraction(f) } else { fail("\(path).ranks", "\(f): a fraction must lie between 0 and 1") }
        case .string(let s)? where s.hasPrefix("with:"):
            ranks = .with(String(s.dropFirst(5)))
        case let other?:
            fail("\(path).ranks", "expected a rank count, a fraction, \"all\", \"rest\" or \"with:STAGE\", got \(other)")
        }

        var inputs: [String: (stage: String, port: String)] = [:]
        var written: [String: JSONValue] = [:]
        if let i = o["inputs"] {
            if case .object(let map) = i { written = map } else {
                fail("\(path).inputs", "expected an object of input: STAGE.OUTPUT, got \(i.typeName)")
            }
        }
        unknownKeys(written, known: d.inputs.map(\.name), at: "\(path).inputs")
        for port in d.inputs {
            let at = "\(path).inputs.\(port.name)"
            guard let source = written[port.name] else {
                if port.optional { continue }
                fail(at, "not connected: this input takes \(port.kind) from another stage's output")
                continue
            }
            guard let text = string(source, at: at, required: true) else { continue }
            let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
            if parts.count == 2 { inputs[port.name] = (parts[0], parts[1]) } else { fail(at, "'\(text)' must name STAGE.OUTPUT") }
        }

        var values: [String: ParameterValue] = [:]
        for p in d.parameters {
            let at = "\(path).\(p.name)"
            guard let raw = o[p.name] else {
                if let value = p.defaultValue { values[p.name] = value } else { fail(at, "missing (\(p.kind.typeName)): \(p.doc)") }
                continue
            }
            guard let value = raw.parameterValue else { fail(at, "expected \(p.kind.typeName), got \(raw.typeName)"); continue }
            switch p.check(value) {
            case .valid(let v): values[p.name] = v
            case .invalid(let problem): fail(at, problem)
            }
        }
        return StageInstance(name: name, type: d.type, ranks: ranks, inputs: inputs, parameters: ParameterSet(values))
    }

    /// Every input names an existing stage's output of the same kind.
    mutating func connections(_ stages: [StageInstance]) {
        let byName = Dictionary(stages.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for s in stages {
            let d = registry.type(named: s.type)!.description
            for (port, source) in s.inputs.sorted(by: { $0.key < $1.key }) {
                let at = "stages.\(s.name).inputs.\(port)"
                guard let producer = byName[source.stage] else {
                    let near = nearest(source.stage, in: stages.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
                    fail(at, "no stage '\(source.stage)' produces it\(near)")
                    continue
                }
                let outputs = registry.type(named: producer.type)!.description.outputs
                guard let output = outputs.first(where: { $0.name == source.port }) else {
                    fail(at, "'\(source.stage)' has no output '\(source.port)'; it produces: \(outputs.map(\.name).joined(separator: ", "))")
                    continue
                }
                let wanted = d.inputs.first { $0.name == port }!.kind
                if output.kind != wanted { fail(at, "'\(source.stage).\(source.port)' gives \(output.kind), this input takes \(wanted)") }
                if producer.name == s.name { fail(at, "a stage cannot feed itself") }
            }
            if case .with(let other) = s.ranks {
                if byName[other] == nil { fail("stages.\(s.name).ranks", "with:\(other) names no stage") }
                else if other == s.name { fail("stages.\(s.name).ranks", "a stage cannot share its own ranks") }
            }
        }
        let order = topologicalOrder(stages)
        // A stage feeding itself is reported above; any other loop here.
        let looped = stages.indices.filter { !order.contains($0) }.map { stages[$0] }
            .filter { s in !s.inputs.values.contains { $0.stage == s.name } }.map(\.name)
        if !looped.isEmpty {
            fail("stages.\(looped[0]).inputs", "stages \(looped.joined(separator: ", ")) feed each other in a cycle")
        }
    }
}

/// Stage indices with every producer before its consumers (file order among
/// equals, so every rank computes the same order); stages on a cycle are left out.
public func topologicalOrder(_ stages: [StageInstance]) -> [Int] {
    let index = Dictionary(stages.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    var order: [Int] = [], placed = Set<Int>()
    var progress = true
    while progress {
        progress = false
        for (i, s) in stages.enumerated() where !placed.contains(i) {
            let producers = s.inputs.values.compactMap { index[$0.stage] }
            if producers.allSatisfy({ placed.contains($0) && $0 != i }) {
                order.append(i)
                placed.insert(i)
                progress = true
            }
        }
    }
    return order
}
