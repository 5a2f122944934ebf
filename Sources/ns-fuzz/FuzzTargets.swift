import Foundation
import Ingest
import Pipeline
import PipelineRuntime
import Streaming

/// What each fuzz target feeds one input to. A target must survive every
/// input: a trap, a sanitizer report or a hang is a finding.
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "messages": messages,
        "control": control,
        "pipeline": pipeline,
    ]

    /// Detector messages into rank 0's coordinator, as the receiving thread
    /// hands them over: the message checker, the `start` checks against a
    /// 1 GiB budget on two ranks, frame placement and dealing; an input is
    /// read as `MessageReplay.messages(in:)` reads text.
    static func messages(_ input: [UInt8]) {
        var options = StreamOptions()
        options.outputDirectory = emptyDirectory
        options.credit = 4
        options.finalIterations = 1
        options.finalSeconds = 0
        let messages = MessageReplay.messages(in: input)
        MessageReplay.play(messages, options: options, ranks: 2, budgetBytes: Double(1 << 30))
    }

    /// One control-port request.
    static func control(_ input: [UInt8]) {
        _ = ControlCommand.parse(input)
    }

    /// A pipeline file: the strict JSON reader, then the stage graph checks.
    static func pipeline(_ input: [UInt8]) {
        _ = try? PipelineSpec.parse(Data(input), file: "fuzz.json", registry: .standard)
    }

    private static let emptyDirectory: String = {
        let path = NSTemporaryDirectory() + "ns-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()
}
