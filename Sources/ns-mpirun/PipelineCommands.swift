import ArgumentParser
import Foundation
import Parameters
import Pipeline
import PipelineRuntime

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

    @Argument(help: "The pipeline file (JSON), or the name of a shipped one (\(ShippedPipelines.names.joined(separator: ", "))).")
    var pipeline: String
    @Option(help: "The job's rank count to plan for.")
    var ranks = 1
    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, e.g. stages.read.path=scan.cxi (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    func validate() throws {
        guard ranks > 0 else { throw ValidationError("--ranks must be positive, got \(ranks)") }
    }

    func run() throws {
        do {
            let path = ShippedPipelines.locate(pipeline)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw PipelineValidationError(file: path, issues: [.init(keyPath: "(file)", problem: "cannot be read")])
            }
            let spec = try PipelineSpec.parse(data, file: ShippedPipelines.label(path), registry: .standard, overrides: overrides)
            print(try PipelinePlan(spec, ranks: ranks).text, terminator: "")
        } catch let error as PipelineValidationError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline file on the job's ranks: rank 0 validates it and plans it for the job's size first, and a bad file stops every rank with the message.")

    @Argument(help: "The pipeline file (JSON), or the name of a shipped one (\(ShippedPipelines.names.joined(separator: ", "))).")
    var pipeline: String
    @Flag(help: "Print what each stage received and emitted, per rank.")
    var counts = false
    @Option(help: "MiB a rank that runs only a source may have sent but not yet received by the other ranks before it waits.")
    var maxInFlightMb = 64

    func validate() throws {
        guard maxInFlightMb >= 1 else { throw ValidationError("--max-in-flight-mb must be at least 1, got \(maxInFlightMb)") }
    }
    @Option(name: .customLong("set"), help: ArgumentHelp("Override one key, e.g. stages.read.path=scan.cxi (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    func run() throws {
        var failed = false
        let pipeline = ShippedPipelines.locate(self.pipeline)
        try withMPI { world in
            // Rank 0 reads the file; every rank parses the same bytes.
            var text = ""
            if world.rank == 0 {
                text = FileManager.default.contents(atPath: pipeline).map { String(decoding: $0, as: UTF8.self) } ?? "\u{0}"
            }
            text = try world.broadcast(text, root: 0)
            let plan: PipelinePlan
            do {
                guard text != "\u{0}" else {
                    throw PipelineValidationError(file: pipeline, issues: [.init(keyPath: "(file)", problem: "cannot be read")])
                }
                let spec = try PipelineSpec.parse(Data(text.utf8), file: ShippedPipelines.label(pipeline), registry: .standard, overrides: overrides)
                plan = try PipelinePlan(spec, ranks: world.size)
            } catch let error as PipelineValidationError {
                if world.rank == 0 { FileHandle.standardError.write(Data((error.description + "\n").utf8)) }
                failed = true
                return
            }
            if world.rank == 0 {
                try FileManager.default.createDirectory(atPath: plan.spec.outputDirectory, withIntermediateDirectories: true)
                print(plan.text, terminator: "")
            }
            try world.barrier()
            let runner = try PipelineRunner(plan: plan, registry: .standard, world: world, outputDirectory: plan.spec.outputDirectory,
                                            maxPendingBytes: maxInFlightMb << 20)
            try runner.run()
            if counts {
                let mine = runner.counts.filter { name, _ in plan.steps.contains { $0.stage.name == name && $0.ranks.contains(world.rank) } }
                let line = mine.sorted { $0.key < $1.key }.map { "\($0.key) in \($0.value.received) out \($0.value.emitted)" }
                try printInRankOrder(world, "rank \(world.rank): " + line.joined(separator: ", "))
            }
            if world.rank == 0 { print("run: pipeline '\(plan.spec.name)' done; outputs in \(plan.spec.outputDirectory)") }
        }
        if failed { throw ExitCode(1) }
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
