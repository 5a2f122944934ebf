import Foundation
import Ingest
import Pipeline
import PipelineRuntime
@testable import Streaming

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
        let coordinator = Coordinator(options: options, ranks: 2, budgetBytes: Double(1 << 30))
        let queue = IngestQueue(capacityFrames: 64, capacityBytes: 1 << 24)
        var dealt = [0, 0]
        for message in split(input, on: [10, 10]) {
            var parts = split(message, on: [10])
            if parts.count == 3, parts[2] == Array("auto".utf8),
               let header = try? FrameHeader.decode(parts[1]), header.payloadBytes <= 1 << 20 {
                parts[2] = [UInt8](repeating: 0, count: header.payloadBytes)
            }
            _ = queue.tryPut(StreamReceiver.check(parts, arrival: 0))
            // Ranks that keep up: everything dealt so far is processed and placed.
            let counters = dealt.map { [0, 0, $0, 0, $0, 0, 0] }
            _ = coordinator.plan(queue: queue, counters: counters, waited: false)
            for (rank, frames) in coordinator.takeDealt().enumerated() where rank < dealt.count { dealt[rank] += frames.count }
        }
        _ = coordinator.status(counters: dealt.map { [0, 0, $0, 0, $0, 0, 0] })
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
