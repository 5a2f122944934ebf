import Foundation
import Ingest
import SessionMetrics
import Testing
@testable import Streaming

/// The session's Prometheus counters: lifetime totals that survive each
/// scan's own counts starting again, rejections under a few fixed reasons,
/// and the loopback rule for where they are served (the endpoint itself is
/// tested in a session's process: MetricsTests).
@Suite struct SessionMetricsTests {
    func value(_ m: SessionMetrics, _ sample: String) -> Double? {
        let text = String(decoding: m.exposition(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    @Test func countsAreLifetimeTotalsAcrossScans() {
        let m = SessionMetrics(ranks: 2)
        // Every reason is there from the start, at zero.
        for reason in FrameRejection.allCases { #expect(value(m, #"ns_frames_rejected_total{reason="\#(reason.rawValue)"}"#) == 0) }
        m.scanProgress(scan: 1, cleaned: 4, placed: 3, iteration: 2)
        m.scanProgress(scan: 1, cleaned: 10, placed: 9, iteration: 5)
        // A later round that reports less (a rank's counts lag) takes nothing back.
        m.scanProgress(scan: 1, cleaned: 8, placed: 9, iteration: 5)
        m.scanEnded(written: true, latencies: [0.02, 0.3, .nan])
        // The next scan, even under the same id, starts its own counts from zero.
        m.scanProgress(scan: 2, cleaned: 6, placed: 6, iteration: 7)
        m.scanEnded(written: false, latencies: [])
        m.scanAborted()
        #expect(value(m, "ns_frames_cleaned_total") == 16)
        #expect(value(m, "ns_frames_placed_total") == 15)
        #expect(value(m, "ns_iterations_total") == 12)
        #expect(value(m, "ns_scan_iteration") == 7)
        #expect(value(m, "ns_scans_written_total") == 1 && value(m, "ns_scans_not_written_total") == 1)
        #expect(value(m, "ns_scans_aborted_total") == 1)
        #expect(value(m, "ns_frame_latency_seconds_count") == 2)
        #expect(value(m, #"ns_frame_latency_seconds_bucket{le="0.025"}"#) == 1)
        #expect(value(m, #"ns_frame_latency_seconds_bucket{le="+Inf"}"#) == 2)
        m.observe(backlog: 7, fourierError: 0.25, placementLatency: 0.5, stalled: true, statusAge: 3, heartbeatAges: [0.5, -1])
        #expect(value(m, "ns_backlog_frames") == 7 && value(m, "ns_stalled") == 1 && value(m, "ns_fourier_error") == 0.25)
        #expect(value(m, #"ns_rank_heartbeat_age_seconds{rank="0"}"#) == 0.5)
        #expect(value(m, #"ns_rank_heartbeat_age_seconds{rank="1"}"#)?.isNaN == true, "no heartbeat yet is not an age of -1 s")
    }

    /// What the coordinator refuses is counted under the reason's label; every frame message counts as received.
    @Test func theCoordinatorCountsEachRejectionUnderItsReason() {
        let m = SessionMetrics(ranks: 1)
        var options = StreamOptions()
        options.credit = 100
        let c = Coordinator(options: options, ranks: 1, metrics: m)
        let q = IngestQueue(capacityFrames: 100, capacityBytes: 1 << 20)
        _ = q.put(CoordinatorTests.frame(0))                              // no scan open
        _ = q.put(.start(CoordinatorTests.start(frames: 3)))
        _ = q.put(CoordinatorTests.frame(1))
        _ = q.put(CoordinatorTests.frame(1))                              // duplicate
        _ = q.put(CoordinatorTests.frame(9))                              // beyond the scan
        _ = q.put(.rejected(reason: "frame: 2 parts", kind: .frame(.malformed)))
        _ = q.put(.rejected(reason: "message: unknown topic 'x'", kind: .message(.unknownTopic)))
        _ = c.plan(queue: q, counters: CoordinatorTests.counters(ranks: 1), waited: false)
        c.ranksRejected([RankRejection(scanID: "s", index: 1, dark: false, reason: "frame 1: pixel (0, 0) is not finite")])
        #expect(value(m, "ns_frames_received_total") == 5)
        #expect(value(m, "ns_received_bytes_total") == Double(4 * 64))
        for (reason, n) in [("no_scan", 1.0), ("duplicate", 1), ("index", 1), ("malformed", 1), ("cleaning", 1), ("shape", 0)] {
            #expect(value(m, #"ns_frames_rejected_total{reason="\#(reason)"}"#) == n, "\(reason)")
        }
        #expect(value(m, #"ns_messages_rejected_total{reason="unknown_topic"}"#) == 1)
    }

    @Test func metricsBeyondLoopbackNeedATokenAndHTTPS() {
        var o = StreamOptions()
        o.metrics.address = "0.0.0.0:9100"
        #expect(o.problems().contains { $0.contains("--metrics-token-file") && $0.contains("--metrics-tls-cert") })
        o.metrics.address = "127.0.0.1:9100"
        #expect(o.problems().isEmpty)
        o.metrics.address = "9100"
        #expect(o.problems().contains { $0.contains("HOST:PORT") })
        o.metrics.address = nil
        o.metrics.tokenFile = "/tmp/token"
        #expect(o.problems().contains { $0.contains("are for --metrics") })
    }
}
