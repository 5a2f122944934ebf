import Foundation
import Ingest

/// Detector messages taken as rank 0 takes them, without sockets or MPI:
/// each checked by the receiving thread's checker, queued, and planned by
/// the coordinator for ranks that keep up. For the fuzzer, which must reach
/// the `start` checks, frame placement and dealing with arbitrary bytes.
public enum MessageReplay {
    /// Plays `messages` (each a multipart message) one per round; the final status.
    @discardableResult
    public static func play(_ messages: [[[UInt8]]], options: StreamOptions, ranks: Int, budgetBytes: Double) -> [String: Any] {
        let coordinator = Coordinator(options: options, ranks: ranks, budgetBytes: budgetBytes)
        let queue = IngestQueue(capacityFrames: 64, capacityBytes: 1 << 24)
        var dealt = [Int](repeating: 0, count: ranks)
        // Ranks that keep up: every frame dealt so far is cleaned and placed.
        func counters() -> [[Int]] { dealt.map { [0, 0, $0, 0, $0, 0, 0] } }
        for parts in messages {
            _ = queue.tryPut(StreamReceiver.check(parts, arrival: 0))
            _ = coordinator.plan(queue: queue, counters: counters(), waited: false)
            for (rank, frames) in coordinator.takeDealt().enumerated() where rank < ranks { dealt[rank] += frames.count }
        }
        return coordinator.status(counters: counters())
    }

    /// Messages written as text, as the fuzzer's inputs and seeds are:
    /// messages separated by a blank line, parts by a newline; a third part
    /// reading `auto` is a zero payload of the size the header names (up to 1 MiB).
    public static func messages(in bytes: [UInt8]) -> [[[UInt8]]] {
        split(bytes, on: [10, 10]).map { message in
            var parts = split(message, on: [10])
            if parts.count == 3, parts[2] == Array("auto".utf8),
               let header = try? FrameHeader.decode(parts[1]), header.payloadBytes <= 1 << 20 {
                parts[2] = [UInt8](repeating: 0, count: header.payloadBytes)
            }
            return parts
        }
    }

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
