import Engines
import Foundation
import Ingest
import Pipeline
import PipelineRuntime
import Preprocessing
import Recon
import Reconstruction
import Streaming
import Testing

/// The commands `raw2cxi`, `recon` and `stream` take their settings from
/// the shipped pipelines, with options written over single keys.
@Suite struct CommandParametersTests {
    func issues(_ body: () throws -> Void) -> [String] {
        do { try body() } catch let e as PipelineValidationError { return e.issues.map(\.description) } catch { return ["\(error)"] }
        return []
    }

    /// The shipped files spell out the values the jobs document as their defaults.
    @Test func theShippedPipelinesGiveTheJobsDefaults() throws {
        let raw = try ShippedPipelines.resolve(stageType: "raw2cxi", pipeline: nil, overrides: [])
        #expect(try RawToCXIJob.Options(parameters: raw.parameters).preprocess == PreprocessOptions())
        #expect(raw.origins.values.allSatisfy { $0 == .file }, "every key is written in the file")

        let recon = try ShippedPipelines.resolve(stageType: "recon", pipeline: nil, overrides: [])
        let r = try ReconstructionJob.Options(parameters: recon.parameters)
        #expect(r.engine == EngineOptions())
        #expect(r.useFileProbe && r.probeDefocus == 0 && r.tiles == nil && r.truthEvery == ReconstructionJob.Options().truthEvery)

        let stream = try ShippedPipelines.resolve(stageType: "stream", pipeline: nil, overrides: [])
        let s = try StreamStage.options(stream.parameters, endpoints: stream.spec.endpoints, save: stream.spec.save,
                                        outputDirectory: stream.spec.outputDirectory)
        let d = StreamOptions()
        #expect(s.engine == d.engine && s.preprocess == d.preprocess)
        #expect(s.connect == d.connect && s.control == nil && s.publish == nil && s.outputDirectory == d.outputDirectory)
        #expect(s.finalIterations == d.finalIterations && s.finalSeconds == d.finalSeconds && s.solveAfter == d.solveAfter)
        #expect(s.credit == d.credit && s.cleanPerRound == d.cleanPerRound && s.frameTimeout == d.frameTimeout)
        #expect(s.backlogFrames == d.backlogFrames && s.maxMessageMegabytes == d.maxMessageMegabytes && s.publishEvery == d.publishEvery)
        #expect(s.heartbeatTimeout == d.heartbeatTimeout && s.statusInterval == d.statusInterval && s.scans == nil)
        #expect(!s.saveRaw && !s.saveClean)
        #expect(stream.origins.values.allSatisfy { $0 == .file })
    }

    @Test func optionsOverrideSingleKeysAndSetKeysBelowThem() throws {
        let p = try ShippedPipelines.resolve(
            stageType: "stream", pipeline: nil,
            overrides: [.init("crop", .integer(512), option: "--crop"), .init("beta", .number(0.5), option: "--beta"),
                        .init("endpoints.control", .string("tcp://127.0.0.1:7000"), option: "--control"),
                        .init("output.directory", .string("/tmp/x y"), option: "-o")],
            settings: ["stages.session.beta=0.9", "stages.session.credit=3", "output.save=[\"raw\"]"])
        let o = try StreamStage.options(p.parameters, endpoints: p.spec.endpoints, save: p.spec.save, outputDirectory: p.spec.outputDirectory)
        #expect(o.preprocess.cropSize == 512 && o.engine.beta == 0.5 && o.credit == 3)
        #expect(o.control == "tcp://127.0.0.1:7000" && o.outputDirectory == "/tmp/x y" && o.saveRaw && !o.saveClean)
        #expect(p.origins["crop"] == .commandLine && p.origins["credit"] == .commandLine && p.origins["batch"] == .file)
        #expect(p.text.contains("  crop                  = 512   (command line)\n"), "\(p.text)")
    }

    @Test func aBadOptionIsReportedAtItsKeyWithTheOptionsName() {
        #expect(issues { _ = try ShippedPipelines.resolve(stageType: "raw2cxi", pipeline: nil,
                                                         overrides: [.init("overscan_order", .integer(7), option: "--overscan-order")]) }
            == ["stages.clean.overscan_order: 7 is out of range 0...3 (given as --overscan-order)"])
        #expect(issues { _ = try ShippedPipelines.resolve(stageType: "recon", pipeline: nil,
                                                         overrides: [.init("power_bound", .string("poison:1"), option: "--power-bound")]) }
            == ["stages.solve.power_bound: must be poisson:K, relax:R or none, got \"poison:1\" (given as --power-bound)"])
        // Parameters valid alone but not together are found by validation, before a job starts.
        #expect(issues { _ = try ShippedPipelines.resolve(stageType: "raw2cxi", pipeline: nil,
                                                         overrides: [.init("crop", .integer(128), option: "--crop"),
                                                                     .init("output_size", .integer(256), option: "--output-size")]) }
            == ["stages.clean: output size 256 is larger than the crop 128"])
        #expect(issues { _ = try ShippedPipelines.resolve(stageType: "stream", pipeline: nil, overrides: [],
                                                         settings: ["endpoints.publsh=tcp://127.0.0.1:7001"]) }
            == ["endpoints.publsh: not used by a live session (did you mean 'publish'?); it uses detector, control, publish"])
    }

    @Test func aPipelineWithoutTheCommandsStageIsRefused() throws {
        let none = issues { _ = try ShippedPipelines.resolve(stageType: "recon", pipeline: "frame-statistics", overrides: []) }
        #expect(none.count == 1 && none[0].hasPrefix("stages: no stage of type 'recon'"), "\(none)")
        // offline.json's recon stage is fed by its raw2cxi stage: the command takes that stage's settings.
        let offline = try ShippedPipelines.resolve(stageType: "recon", pipeline: "offline", overrides: [])
        #expect(offline.stage.name == "solve" && offline.parameters.integer("iterations") == 50)
        #expect(ShippedPipelines.names.contains("stream") && ShippedPipelines.locate("nonesuch") == "nonesuch")
    }
}

/// The control port's `set` checks what the live pipeline file declares.
@Suite struct LiveSettingsTests {
    @Test func setTakesTheStreamStagesDeclarations() throws {
        let stage = StreamStage.description.parameters
        // `set`'s name for the stage's `iterations` says they run after the last frame.
        let names = ["final_iterations": "iterations", "algorithm": "algorithm", "beta": "beta", "publish_every": "publish_every"]
        #expect(Set(LiveSettings.parameters.map(\.name)) == Set(names.keys))
        for live in LiveSettings.parameters {
            let declared = try #require(stage.first { $0.name == names[live.name] }, "\(live.name)")
            #expect(live.kind == declared.kind, "\(live.name): \(live.kind) here, \(declared.kind) in the stream stage")
        }
    }
}
