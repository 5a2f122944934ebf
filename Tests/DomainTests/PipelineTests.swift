import Foundation
import Parameters
import Pipeline
import Recon
import Testing

/// A test-only source of clean frames, so that pipelines can be built
/// around the example stage.
final class CountingSource: Stage {
    static let description = StageDescription(
        type: "counting-source", summary: "frames of ones (tests)", inputs: [],
        outputs: [PortSpec("frames", .cleanFrame, doc: "frames of ones")],
        parameters: [ParameterSpec("frames", .integer(1...1000), default: .integer(3), doc: "how many"),
                     ParameterSpec("mode", .choice(["ones", "zeros"]), default: .string("ones"), doc: "pixel values"),
                     ParameterSpec("label", .string, default: nil, doc: "required, for the missing-parameter test")])
    init(parameters: ParameterSet, context: StageContext) throws {}
    func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {}
    func flush(emit: (StageItem) throws -> Void) throws {}
    func reset() {}
}

/// Test-only: clean frames in, the same out (for cycles).
final class PassThrough: Stage {
    static let description = StageDescription(
        type: "pass", summary: "frames through (tests)", inputs: [PortSpec("in", .cleanFrame, doc: "frames")],
        outputs: [PortSpec("out", .cleanFrame, doc: "the same frames")], parameters: [])
    init(parameters: ParameterSet, context: StageContext) throws {}
    func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws { try emit(StageItem(port: "out", index: item.index, payload: item.payload)) }
    func flush(emit: (StageItem) throws -> Void) throws {}
    func reset() {}
}

@Suite struct PipelineTests {
    let registry = StageRegistry.core.adding([CountingSource.self, PassThrough.self])

    func spec(_ json: String) throws -> PipelineSpec {
        try PipelineSpec.parse(Data(json.utf8), file: "test.json", registry: registry)
    }

    /// The problems a file has, as "keyPath: problem" lines.
    func problems(_ json: String) -> [String] {
        do {
            _ = try spec(json)
            return []
        } catch let e as PipelineValidationError {
            #expect(e.file == "test.json")
            return e.issues.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    static let valid = """
        {"pipeline": "demo", "output": {"directory": "out", "save": ["clean", "reconstructed"]},
         "endpoints": {"control": "tcp://127.0.0.1:6001"},
         "stages": [
           {"name": "source", "type": "counting-source", "ranks": 1, "label": "a"},
           {"name": "stats", "type": "frame-statistics", "ranks": "rest", "threshold": 0.5, "inputs": {"frames": "source.frames"}},
           {"name": "again", "type": "frame-statistics", "ranks": "with:stats", "inputs": {"frames": "source.frames"}},
           {"name": "everywhere", "type": "frame-statistics", "ranks": "all", "file": false, "inputs": {"frames": "source.frames"}}
         ]}
        """

    @Test func aValidFileResolvesItsStagesAndDefaults() throws {
        let s = try spec(Self.valid)
        #expect(s.name == "demo" && s.outputDirectory == "out" && s.save == [.clean, .reconstructed])
        #expect(s.endpoints == ["control": "tcp://127.0.0.1:6001"])
        #expect(s.stages.map(\.name) == ["source", "stats", "again", "everywhere"])
        #expect(s.stages[1].parameters.number("threshold") == 0.5)
        #expect(s.stages[2].parameters.number("threshold") == 1, "the declared default")
        #expect(s.stages[0].parameters.integer("frames") == 3 && s.stages[0].parameters.string("mode") == "ones")
        #expect(s.stages[3].parameters.boolean("file") == false)
        #expect(s.stages[1].inputs["frames"]! == ("source", "frames"))
    }

    @Test func plansForOneTwoAndSevenRanks() throws {
        let s = try spec(Self.valid)
        // One rank: the counted source takes it, and "rest" is empty.
        #expect(throws: PipelineValidationError.self) { try PipelinePlan(s, ranks: 1) }
        do {
            _ = try PipelinePlan(s, ranks: 1)
        } catch let e as PipelineValidationError {
            #expect(e.issues.map(\.description) == ["stages.stats.ranks: \"rest\" is empty: the counted stages take all 1 ranks"])
        }
        let two = try PipelinePlan(s, ranks: 2)
        #expect(two.steps.map(\.ranks) == [[0], [1], [1], [0, 1]])
        let seven = try PipelinePlan(s, ranks: 7)
        #expect(seven.steps.map(\.ranks) == [[0], Array(1...6), Array(1...6), Array(0...6)])
        #expect(seven.steps[1].feeds.map { "\($0.input)<-\($0.stage).\($0.port)@\($0.ranks)" } == ["frames<-source.frames@[0]"])
        #expect(seven.text.contains("stats       frame-statistics  1-6"), "\(seven.text)")
        #expect(seven.text.contains("frames <- source.frames (ranks 0)"))
        #expect(seven.text.contains("output: out (saving clean, reconstructed)"))
    }

    @Test func fractionsAndDisjointCountedGroups() throws {
        let s = try spec("""
            {"pipeline": "p", "stages": [
              {"name": "source", "type": "counting-source", "ranks": 2, "label": "x"},
              {"name": "half", "type": "frame-statistics", "ranks": 0.5, "inputs": {"frames": "source.frames"}},
              {"name": "rest", "type": "frame-statistics", "ranks": "rest", "inputs": {"frames": "source.frames"}}]}
            """)
        let seven = try PipelinePlan(s, ranks: 7)
        #expect(seven.steps.map(\.ranks) == [[0, 1], [2, 3, 4], [5, 6]])
        do {
            _ = try PipelinePlan(s, ranks: 3)
            Issue.record("2 + 1 counted ranks on 3 leave no rest")
        } catch let e as PipelineValidationError {
            #expect(e.issues.map(\.keyPath) == ["stages.rest.ranks"])
        }
        do {
            _ = try PipelinePlan(s, ranks: 2)
            Issue.record("2 + 1 counted ranks do not fit 2")
        } catch let e as PipelineValidationError {
            #expect(e.issues.first?.description == "stages.half.ranks: asks for 1 ranks from rank 2, but the job has 2 (the counted stages before it took 2)")
        }
    }

    @Test func eachProblemNamesItsKeyPath() {
        func with(_ stage: String) -> String {
            """
            {"pipeline": "p", "stages": [{"name": "source", "type": "counting-source", "label": "x"}, \(stage)]}
            """
        }
        // Unknown key, with the nearest known name.
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "treshold": 2, "inputs": {"frames": "source.frames"}}"#))
            == ["stages.s.treshold: unknown key (did you mean 'threshold'?); known keys: name, type, ranks, inputs, threshold, file"])
        // Wrong type and out of range.
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "threshold": "high", "inputs": {"frames": "source.frames"}}"#))
            == ["stages.s.threshold: expected a number, got \"high\""])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "threshold": -1, "inputs": {"frames": "source.frames"}}"#))
            == ["stages.s.threshold: -1.0 is out of range 0.0...1000000000000.0"])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "file": 1, "inputs": {"frames": "source.frames"}}"#))
            == ["stages.s.file: expected true or false, got 1"])
        // An input nobody produces, a wrong output, a wrong kind, a missing connection.
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "inputs": {"frames": "sauce.frames"}}"#))
            == ["stages.s.inputs.frames: no stage 'sauce' produces it (did you mean 'source'?)"])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "inputs": {"frames": "source.rows"}}"#))
            == ["stages.s.inputs.frames: 'source' has no output 'rows'; it produces: frames"])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "inputs": {"frames": "s.rows"}}"#))
            == ["stages.s.inputs.frames: 's.rows' gives table-row, this input takes clean-frame",
                "stages.s.inputs.frames: a stage cannot feed itself"])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics"}"#))
            == ["stages.s.inputs.frames: not connected: this input takes clean-frame from another stage's output"])
        // Unknown stage type, bad rank groups, a missing required parameter, a bad choice.
        #expect(problems(with(#"{"name": "s", "type": "frame-statistic"}"#))
            == ["stages.s.type: no stage type 'frame-statistic' (did you mean 'frame-statistics'?); known types: frame-statistics, counting-source, pass"])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "ranks": 0, "inputs": {"frames": "source.frames"}}"#))
            == ["stages.s.ranks: 0 ranks: a group needs at least one"])
        #expect(problems(with(#"{"name": "s", "type": "frame-statistics", "ranks": "with:nobody", "inputs": {"frames": "source.frames"}}"#))
            == ["stages.s.ranks: with:nobody names no stage"])
        #expect(problems(#"{"pipeline": "p", "stages": [{"name": "source", "type": "counting-source", "mode": "twos"}]}"#)
            == ["stages.source.mode: 'twos' is not one of 'ones', 'zeros'",
                "stages.source.label: missing (a string): required, for the missing-parameter test"])
        // Stages that feed each other.
        #expect(problems(#"{"pipeline": "p", "stages": [{"name": "a", "type": "pass", "inputs": {"in": "b.out"}}, {"name": "b", "type": "pass", "inputs": {"in": "a.out"}}]}"#)
            == ["stages.a.inputs: stages a, b feed each other in a cycle"])
        // Top level: unknown key, bad endpoint, bad saved product, no stages, not JSON.
        #expect(problems(#"{"pipeline": "p", "stage": []}"#)
            == ["stage: unknown key (did you mean 'stages'?); known keys: pipeline, description, endpoints, output, stages",
                "stages: missing (a list of stages)"])
        #expect(problems(#"{"pipeline": "p", "endpoints": {"data": "127.0.0.1:5555"}, "output": {"save": ["cleaned"]}, "stages": []}"#)
            == ["endpoints.data: '127.0.0.1:5555' is not a ZeroMQ endpoint like tcp://127.0.0.1:5555",
                "output.save[0]: 'cleaned' is not one of raw, clean, reconstructed (did you mean 'clean'?)",
                "stages: the pipeline has no stages"])
        #expect(problems("{\"pipeline\": ").first?.hasPrefix("(file): not valid JSON") == true)
    }

    @Test func overridesSetSingleKeysBeforeValidation() throws {
        let s = try PipelineSpec.parse(Data(Self.valid.utf8), file: "test.json", registry: registry,
                                       overrides: ["stages.stats.threshold=7", "output.directory=elsewhere", "stages.source.label=b"])
        #expect(s.stages[1].parameters.number("threshold") == 7 && s.outputDirectory == "elsewhere")
        #expect(s.stages[0].parameters.string("label") == "b")
        do {
            _ = try PipelineSpec.parse(Data(Self.valid.utf8), file: "test.json", registry: registry,
                                       overrides: ["stages.stats.threshold=-2", "stages.nobody.x=1"])
            Issue.record("bad overrides accepted")
        } catch let e as PipelineValidationError {
            #expect(e.issues.map(\.description) == ["stages.nobody.x: cannot override: no entry named 'nobody'",
                                                    "stages.stats.threshold: -2.0 is out of range 0.0...1000000000000.0"])
        }
    }

    @Test func theExampleStageCountsAndTotalsOverItsGroup() throws {
        let dir = NSTemporaryDirectory() + "ns-stage-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try spec(Self.valid)
        let stage = try FrameStatisticsStage(parameters: s.stages[1].parameters,
                                             context: StageContext(name: "stats", groupRank: 0, groupSize: 1, group: SingleRank(),
                                                                   outputDirectory: dir))
        var rows: [[Double]] = []
        for (i, frame) in [[0, 0.5, 2, 3], [1, 1, 0, 0]].enumerated() {
            try stage.process(StageItem(port: "frames", index: i, payload: frame.map(Float.init))) { rows.append(try $0.value()) }
        }
        #expect(rows == [[0, 5.5, 3, 3], [1, 2, 2, 1]])
        #expect(throws: PipelineError.self) { try stage.process(StageItem(port: "frames", index: 2, payload: "text")) { _ in } }
        try stage.flush { _ in }
        let csv = try String(contentsOfFile: dir + "/stats.csv", encoding: .utf8)
        #expect(csv == "frames,photons,bright_pixels,ranks\n2,7.5,5,1\n")
    }
}
