import Foundation
import Prometheus

/// A live session's counters and gauges in Prometheus's text format. Counters
/// are lifetime totals across scans (a scan's own counts reset at its start,
/// these never do); gauges are the latest value. Thread-safe: rank 0's main
/// loop counts, its receiving thread sets the gauges, an HTTP handler emits.
public final class SessionMetrics: @unchecked Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let received: Counter
    private let receivedBytes: Counter
    private let cleaned: Counter
    private let placed: Counter
    private let iterations: Counter
    private let scansWritten: Counter
    private let scansNotWritten: Counter
    private let scansAborted: Counter
    private let backlog: Gauge
    private let iteration: Gauge
    private let fourierError: Gauge
    private let placementLatency: Gauge
    private let stalled: Gauge
    private let statusAge: Gauge
    private let ranks: Gauge
    private let latency: ValueHistogram
    private let framesRejected: [FrameRejection: Counter]
    private let messagesRejected: [MessageRejection: Counter]
    private let lock = NSLock()
    private var perScan = ScanProgress()

    /// Upper bounds (s) of the latency histogram's buckets: from a frame that is
    /// placed while the next arrives (10 Hz and faster) to one held up for a minute.
    public static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

    /// What a scan's per-scan counts stood at when they were last taken in.
    private struct ScanProgress {
        var scan = -1
        var cleaned = 0
        var placed = 0
        var iteration = 0
    }

    public init(ranks: Int) {
        let r = registry
        received = r.makeCounter(descriptor: .ns("frames_received_total", help: "Frame messages received from the detector, valid or not."))
        receivedBytes = r.makeCounter(descriptor: .ns("received_bytes_total", help: "Payload bytes of the valid frame messages received."))
        cleaned = r.makeCounter(descriptor: .ns("frames_cleaned_total", help: "Frames cleaned (darks subtracted, photons counted, cropped) on any rank."))
        placed = r.makeCounter(descriptor: .ns("frames_placed_total", help: "Clean frames placed in the solve on the rank owning their tile."))
        iterations = r.makeCounter(descriptor: .ns("iterations_total", help: "Solver iterations run, over every scan."))
        scansWritten = r.makeCounter(descriptor: .ns("scans_written_total", help: "Scans solved and written to their CXI file."))
        scansNotWritten = r.makeCounter(descriptor: .ns("scans_not_written_total", help: "Scans that ended without a file (nothing to solve, or the write failed)."))
        scansAborted = r.makeCounter(descriptor: .ns("scans_aborted_total", help: "Scans aborted by the detector or an operator."))
        backlog = r.makeGauge(descriptor: .ns("backlog_frames", help: "Frames received and not yet dealt to a rank."))
        iteration = r.makeGauge(descriptor: .ns("scan_iteration", help: "The open scan's solver iteration."))
        fourierError = r.makeGauge(descriptor: .ns("fourier_error", help: "The open scan's latest Fourier error (normalised)."))
        placementLatency = r.makeGauge(descriptor: .ns("placement_latency_seconds", help: "From arrival on rank 0 to a place in the solve, for the latest frame (slowest rank)."))
        stalled = r.makeGauge(descriptor: .ns("stalled", help: "1 when no round has completed within the heartbeat timeout."))
        statusAge = r.makeGauge(descriptor: .ns("status_age_seconds", help: "Seconds since the main loop last completed a round."))
        self.ranks = r.makeGauge(descriptor: .ns("ranks", help: "MPI ranks in the session."))
        latency = r.makeValueHistogram(descriptor: .ns("frame_latency_seconds", help: "Each placed frame's time from arrival on rank 0 to its place in the solve, observed when its scan ends."), buckets: Self.latencyBuckets)
        self.ranks.set(Double(ranks))
        // Every reason appears from the start, so a rate over it has a first sample.
        let frames = MetricNameDescriptor.ns("frames_rejected_total", help: "Frame messages received and not used, by reason.")
        framesRejected = Dictionary(uniqueKeysWithValues: FrameRejection.allCases.map {
            ($0, r.makeCounter(descriptor: frames, labels: [("reason", $0.rawValue)]))
        })
        let messages = MetricNameDescriptor.ns("messages_rejected_total",
                                               help: "Messages other than frames refused: malformed, unknown topic, outside a scan, a scan refused.")
        messagesRejected = Dictionary(uniqueKeysWithValues: MessageRejection.allCases.map {
            ($0, r.makeCounter(descriptor: messages, labels: [("reason", $0.rawValue)]))
        })
    }

    public func frameReceived(bytes: Int) {
        received.increment()
        receivedBytes.increment(by: Int64(bytes))
    }

    /// A frame message that arrived but cannot be used (it still counts as received).
    public func frameRejected(_ reason: FrameRejection) { framesRejected[reason]?.increment() }

    /// A message other than a frame that was refused.
    public func messageRejected(_ reason: MessageRejection) { messagesRejected[reason]?.increment() }

    /// A scan's own running counts (they restart with each scan; `scan` numbers the
    /// session's scans): the lifetime counters take the increase.
    public func scanProgress(scan: Int, cleaned c: Int, placed p: Int, iteration i: Int) {
        lock.lock()
        if perScan.scan != scan { perScan = ScanProgress(scan: scan) }
        let (dc, dp, di) = (max(0, c - perScan.cleaned), max(0, p - perScan.placed), max(0, i - perScan.iteration))
        perScan.cleaned += dc
        perScan.placed += dp
        perScan.iteration += di
        lock.unlock()
        if dc > 0 { cleaned.increment(by: Int64(dc)) }
        if dp > 0 { placed.increment(by: Int64(dp)) }
        if di > 0 { iterations.increment(by: Int64(di)) }
        iteration.set(Double(i))
    }

    /// A scan ended: written or not, with every placed frame's latency (s).
    public func scanEnded(written: Bool, latencies: [Double]) {
        (written ? scansWritten : scansNotWritten).increment()
        for l in latencies where l.isFinite && l >= 0 { latency.record(l) }
    }

    public func scanAborted() { scansAborted.increment() }

    /// The gauges, as the latest status has them.
    public func observe(backlog b: Int, fourierError e: Double?, placementLatency l: Double?, stalled s: Bool, statusAge a: Double,
                        heartbeatAges: [Double?]) {
        backlog.set(Double(b))
        fourierError.set(e ?? .nan)
        placementLatency.set(l ?? .nan)
        stalled.set(s ? 1.0 : 0.0)
        statusAge.set(a)
        for (rank, age) in heartbeatAges.enumerated() {
            registry.makeGauge(descriptor: .ns("rank_heartbeat_age_seconds", help: "Seconds since each rank's last heartbeat (NaN before its first)."), labels: [("rank", String(rank))]).set(age.flatMap { $0 >= 0 ? $0 : nil } ?? .nan)
        }
    }

    /// The exposition text (format 0.0.4).
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}

/// Why a frame message was not used: the `reason` label of `ns_frames_rejected_total`.
public enum FrameRejection: String, CaseIterable, Sendable {
    /// Parts, header or payload size wrong.
    case malformed
    /// No scan open (before `start`, after the scan ended).
    case noScan = "no_scan"
    case afterStop = "after_stop"
    /// Shape other than the scan's.
    case shape
    /// Index beyond the scan's frames or darks.
    case index
    case duplicate
    /// A dark after the dark statistics were made.
    case lateDark = "late_dark"
    /// No or invalid position where the frames carry them.
    case position
    /// Refused by the rank that cleaned it (a NaN pixel, a frame that cannot be cleaned).
    case cleaning
}

/// Why a message other than a frame was refused: the `reason` label of `ns_messages_rejected_total`.
public enum MessageRejection: String, CaseIterable, Sendable {
    case malformed
    case unknownTopic = "unknown_topic"
    /// `stop` or `abort` with no scan open, or for another scan.
    case noScan = "no_scan"
    /// A `start` the session cannot take (too large, invalid geometry).
    case scanRefused = "scan_refused"
    /// A message part over the size limit ended the connection (it is made again).
    case connectionDropped = "connection_dropped"
}

extension MetricNameDescriptor {
    /// `ns_NAME`, its unit already in NAME (`_total`, `_seconds`, `_frames`), as Prometheus's conventions ask.
    public static func ns(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "ns", metricName: name, unitName: "", helpText: help)
    }
}
