import Foundation
import Parameters

/// A command's settings taken from a pipeline file: the parameters of the
/// file's one stage of the command's type, with the options given on the
/// command line written over single keys before validation, so a bad
/// option is reported exactly as a bad key in the file would be.
public struct CommandParameters: Sendable {
    public enum Origin: String, Sendable {
        case commandLine = "command line"
        case file
        case declared = "declared default"
    }

    /// One command-line option as the key it overrides.
    public struct Override: Sendable {
        /// A stage parameter (`overscan_order`) or a pipeline key path
        /// starting with `output.` or `endpoints.`.
        public var key: String
        /// The value as JSON text.
        public var json: String
        /// How the user wrote it, for messages (`--overscan-order`).
        public var option: String
        public init(_ key: String, _ value: ParameterValue, option: String) {
            self.init(key, json: value.json, option: option)
        }
        public init(_ key: String, json: String, option: String) {
            self.key = key
            self.json = json
            self.option = option
        }
    }

    public var spec: PipelineSpec
    public var stage: StageInstance
    /// Where each of the stage's parameters got its value.
    public var origins: [String: Origin]

    public var parameters: ParameterSet { stage.parameters }

    /// Reads `file` (its bytes in `data`), finds its stage of `stageType`,
    /// applies the `--set KEY.PATH=VALUE` settings in `settings` and then
    /// `overrides`, and validates the whole file.
    public init(stageType: String, file: String, data: Data, registry: StageRegistry,
                overrides: [Override], settings: [String] = []) throws {
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            // The full validation words the parse error.
            _ = try PipelineSpec.parse(data, file: file, registry: registry)
            throw PipelineValidationError(file: file, issues: [.init(keyPath: "(file)", problem: "not valid JSON")])
        }
        var matching: [[String: JSONValue]] = []
        if case .object(let top) = root, case .array(let stages)? = top["stages"] {
            for case .object(let s) in stages {
                let type = s["type"] ?? s["name"]
                if type == .string(stageType) { matching.append(s) }
            }
        }
        guard matching.count == 1, case .string(let name)? = matching[0]["name"] else {
            let problem = matching.isEmpty
                ? "no stage of type '\(stageType)': this command takes its parameters from one"
                : "\(matching.count) stages of type '\(stageType)': this command takes its parameters from exactly one"
            throw PipelineValidationError(file: file, issues: [.init(keyPath: "stages", problem: problem)])
        }
        var paths: [String: String] = [:]
        var lines: [String] = []
        for o in overrides {
            let path = o.key.hasPrefix("output.") || o.key.hasPrefix("endpoints.") ? o.key : "stages.\(name).\(o.key)"
            paths[path] = o.option
            lines.append("\(path)=\(o.json)")
        }
        do {
            spec = try PipelineSpec.parse(data, file: file, registry: registry, overrides: settings + lines)
        } catch var error as PipelineValidationError {
            for i in error.issues.indices {
                if let option = paths[error.issues[i].keyPath] { error.issues[i].problem += " (given as \(option))" }
            }
            throw error
        }
        stage = spec.stages.first { $0.name == name }!
        var origins: [String: Origin] = [:]
        let written = matching[0]
        for key in stage.parameters.values.keys {
            let path = "stages.\(name).\(key)"
            if paths[path] != nil || settings.contains(where: { $0.hasPrefix(path + "=") }) {
                origins[key] = .commandLine
            } else {
                origins[key] = written[key] != nil ? .file : .declared
            }
        }
        self.origins = origins
    }

    /// "key = value   (origin)" per parameter, sorted, for `--show-parameters`.
    public var text: String {
        var out = "\(spec.file): stage '\(stage.name)' (\(stage.type))\n"
        out += "  output.directory = \"\(spec.outputDirectory)\"\n"
        for (key, value) in spec.endpoints.sorted(by: { $0.key < $1.key }) { out += "  endpoints.\(key) = \"\(value)\"\n" }
        out += "  output.save = [\(spec.save.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))]\n"
        let width = stage.parameters.values.keys.map(\.count).max() ?? 0
        for key in stage.parameters.values.keys.sorted() {
            let pad = String(repeating: " ", count: width - key.count)
            out += "  \(key)\(pad) = \(stage.parameters.values[key]!)   (\(origins[key]?.rawValue ?? "?"))\n"
        }
        return out
    }
}

extension ParameterValue {
    /// The value as JSON text, for an override.
    public var json: String {
        switch self {
        case .integer(let v): "\(v)"
        case .number(let v): v.isFinite ? "\(v)" : "\"\(v)\""
        case .boolean(let v): "\(v)"
        case .string(let v): String(decoding: try! JSONEncoder().encode(v), as: UTF8.self)
        }
    }
}
