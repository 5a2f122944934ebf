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
}
