import ArgumentParser
import Foundation
import Pipeline

struct StagesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages",
        abstract: "List every pipeline stage type with its inputs, outputs and parameters.")

    func run() throws {
        for type in StageRegistry.standard.types {
            print(StageDocs.text(type.description))
        }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a pipeline file and print the resolved plan (which ranks run which stage, which output feeds which input, where files go) without starting any work.")

    @Argument(help: "The pipeline file (JSON).")
    var pipeline: String
    @Option(help: "The job's rank count to plan for.")
    var ranks = 1

    func validate() throws {
        guard ranks > 0 else { throw ValidationError("--ranks must be positive, got \(ranks)") }
    }

    func run() throws {
        do {
            let spec = try PipelineSpec.load(pipeline)
            print(try PipelinePlan(spec, ranks: ranks).text, terminator: "")
        } catch let error as PipelineValidationError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}

/// A stage's declaration as `ns-mpirun stages` prints it.
enum StageDocs {
    static func text(_ d: StageDescription) -> String {
        var out = "\(d.type): \(d.summary)\n"
        for p in d.inputs { out += "  input  \(p.name) (\(p.kind)): \(p.doc)\n" }
        for p in d.outputs { out += "  output \(p.name) (\(p.kind)): \(p.doc)\n" }
        for p in d.parameters {
            var line = "  \(p.name): \(kind(p.kind))"
            if let unit = p.unit { line += ", \(unit)" }
            line += p.defaultValue.map { ", default \($0)" } ?? ", required"
            out += line + "\n      \(p.doc)\n"
        }
        return out
    }

    static func kind(_ k: ParameterKind) -> String {
        switch k {
        case .integer(let r): r.map { "integer in \($0.lowerBound)...\($0.upperBound)" } ?? "integer"
        case .number(let r): r.map { "number in \($0.lowerBound)...\($0.upperBound)" } ?? "number"
        case .boolean: "true or false"
        case .string: "string"
        case .choice(let c): "one of " + c.joined(separator: ", ")
        }
    }
}
