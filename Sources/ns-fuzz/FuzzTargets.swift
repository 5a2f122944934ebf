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
    /// 1 GiB budget on two ranks, frame placement and dealing. An input is
    /// messages separated by a blank line, parts by a newline; a third part
    /// reading `auto` is a zero payload of the size the header names.
    static func messages(_ input: [UInt8]) {
        var options = StreamOptions()
        options.outputDirectory = emptyDirectory
        options.credit = 4
        options.finalIterations = 1
        options.finalSeconds = 0
        let messages = split(input, on: [10, 10]).map { message in
            var parts = split(message, on: [10])
            if parts.count == 3, parts[2] == Array("auto".utf8),
               let header = try? FrameHeader.decode(parts[1]), header.payloadBytes <= 1 << 20 {
                parts[2] = [UInt8](repeating: 0, count: header.payloadBytes)
            }
            return parts
        }
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

    static func split(_ bytes: [UInt8], on separator: [UInt8]) -> [[UInt8]] {
        var pieces: [[UInt8]] = []
        var start = 0, i = 0
        while i + separator.count <= bytes.count {
            if bytes[i..<(i + separator.count)].elementsEqual(separator) {
                pieces.append(Array(bytes[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        pieces.append(Array(bytes[start...]))
        return pieces
    }
}
