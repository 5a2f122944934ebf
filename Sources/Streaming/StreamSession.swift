import CXI
import Engines
import Foundation
import Ingest
import Numerics
import Recon
import ReconMPI
import Reconstruction
import SafeOutput
import SessionMetrics
import SwiftMPI
import SwiftZMQ
import WebAccess

/// What rank 0 tells every rank at the start of a round.
struct RoundPlan: Codable {
    var start: ScanStart?
    /// With `start`: the scan's file-name base, free in the output folder.
    var fileBase: String?
    var abort = false
    var prepare = false
    var solve = false
    var finish = false
    var publish = false
    /// Run one iteration this round (not while frames wait on rank 0: cleaning comes first).
    var iterate = false
    /// With `iterate` after the scan's last frame: which iteration of the final phase this is.
    var finalIteration: Int?
    var shutdown = false
    /// Frames dealt to each rank this round.
    var deals: [Int] = []
    /// Nothing to do: the next round begins with a sleeping barrier.
    var idle = false
    var settings: LiveSettings?
    /// The scan positions gathered from the frames (a `start` without translations): tile now.
    var positions: [[Double]]?
    /// With `finish`: what rank 0 counted for the scan's report.
    var ingest: IngestCounts?
}

/// Rank 0's accounting of one scan's messages.
struct IngestCounts: Codable {
    var scanID = ""
    /// Frame messages received while the scan was open, valid or not.
    var received = 0
    /// Payload bytes of the valid frame messages received.
    var receivedBytes = 0
    var rejected = 0
    var reasons: [String: Int] = [:]
    /// Frames the ranks refused after they were dealt, by reason (rank 0 frees their indices).
    var rankReasons: [String: Int] = [:]
    /// At the end: frames received but never dealt, the final iterations run, and what cut them short.
    var undealt = 0
    var finalRun = 0
    var finalCutBy: String?
    var stopReceived = false
    var senderRestarts = 0
    var firstArrival: Double?
    var lastArrival: Double?
    var stopArrival: Double?

    mutating func reject(_ reason: String) {
        rejected += 1
        // Reasons grouped by their first words, so a flood stays readable.
        let key = String(reason.prefix(80))
        reasons[key, default: 0] += 1
    }
}

/// A live session on every rank of `comm`: rank 0 receives the detector's
/// messages, every rank cleans the frames dealt to it, clean frames go to
/// the rank owning their tile, and the distributed solver iterates while
/// frames arrive. The ranks move in rounds, each started by rank 0's plan,
/// so every collective call is made by all ranks in the same order.
public final class StreamSession {
    public struct ScanReport: Sendable {
        public var scanID: String
        public var path: String?
        public var frames: Int
        public var placed: Int
        public var received: Int
        public var rejected: Int
        public var iterations: Int
        public var fourierError: Double
        public var secondsAfterLastFrame: Double
        public var aborted: Bool
        /// Arrival of the first and last frame on rank 0, and the last placement on any rank (s since 1970).
        public var firstArrival = 0.0
        public var lastArrival = 0.0
        public var lastPlaced = 0.0
        public var latencyMedian = Double.nan
        public var latency99 = Double.nan
        /// When the cleaner and the tiles were ready (darks merged, centre found).
        public var prepared = 0.0
    }

    let comm: Communicator
    var options: StreamOptions
    let log: (String) -> Void
    private var receiver: StreamReceiver?
    /// What this rank's main loop is doing, told to rank 0 by `heartbeat`'s thread.
    private let activity = RankActivity()
    private var heartbeat: HeartbeatSender?
    private var heartbeatContext: ZMQContext?
    private var coordinator: Coordinator?
    private var work: ScanWork?
    private var counters: [[Int]] = []
    /// Rejections on all ranks as last counted: a change makes them gather the new ones to rank 0.
    private var rejectionsCounted = 0
    /// The memory a scan's solve may take on each rank.
    let budgetBytes: Double
    public private(set) var reports: [ScanReport] = []
    /// Why the latest `set` that the session could not take was refused (for status).
    private var lastRefusedSet: String?
    /// The control port's actual endpoint (a "*" port resolved), on rank 0.
    public private(set) var controlEndpoint: String?
    public private(set) var publishEndpoint: String?
    /// Rank 0's lifetime counters, and where they are served (`--metrics`).
    private var metrics: SessionMetrics?
    private var metricsEndpoint: MetricsEndpoint?
    /// Scans started on this session: numbers each scan's own counts for `metrics`.
    private var scansStarted = 0

    /// Per rank: raw frames queued, darks used, frames cleaned, rejected, placed, iteration, heartbeat (ms).
    static let counterFields = 8

    public init(comm: Communicator, options: StreamOptions, log: @escaping (String) -> Void) throws {
        let problems = options.problems()
        guard problems.isEmpty else { throw StreamError(problems.joined(separator: "; ")) }
        self.comm = comm
        self.options = options
        // Rank 0's lines go to the publish port, the other ranks' warnings and errors with their heartbeats.
        let tap = LogTap()
        let write = log
        let log: (String) -> Void = { line in write(line); tap.forward(line) }
        self.log = log
        counters = Array(repeating: Array(repeating: 0, count: Self.counterFields), count: comm.size)
        budgetBytes = try comm.memoryBudgetBytes(gigabytes: options.maxMemoryGB)
        let allRanksHere = try comm.allreduce(try comm.ranksOnThisHost(), op: .max) == comm.size
        var failure = "", beats = ""
        if comm.rank == 0 {
            do {
                let queue = IngestQueue(capacityFrames: options.backlogFrames, capacityBytes: options.backlogBytes)
                let metrics = SessionMetrics(ranks: comm.size)
                self.metrics = metrics
                let r = try StreamReceiver(connect: options.connect, control: options.control, publish: options.publish, queue: queue,
                                           ranks: comm.size, allRanksHere: allRanksHere, statusInterval: options.statusInterval,
                                           heartbeatTimeout: options.heartbeatTimeout,
                                           maxMessageBytes: Int64(options.maxMessageMegabytes) << 20, security: options.security,
                                           metrics: metrics, log: log)
                receiver = r
                tap.receiver = r
                controlEndpoint = r.controlEndpoint
                publishEndpoint = r.publishEndpoint
                beats = r.heartbeatEndpoint + " " + r.heartbeatKey
                coordinator = Coordinator(options: options, ranks: comm.size, budgetBytes: budgetBytes, metrics: metrics, log: log)
                if let listen = options.metrics.listen {
                    let m = options.metrics
                    let endpoint = try MetricsEndpoint(address: listen, token: try m.tokenFile.map { try PageAccess.token(fromFile: $0) },
                                                       tls: try m.certificateFile.map { try PageCertificate(certificateFile: $0, keyFile: m.keyFile ?? "") },
                                                       exposition: { metrics.exposition() })
                    metricsEndpoint = endpoint
                    log("stream: metrics for Prometheus on \(endpoint.url)")
                }
            } catch {
                failure = "\(error)"
            }
        }
        // Every rank learns whether rank 0 could open its sockets, and where to send its heartbeats.
        failure = try comm.broadcast(failure, root: 0)
        guard failure.isEmpty else { throw StreamError("rank 0 cannot open its ports: \(failure)") }
        let parts = try comm.broadcast(beats, root: 0).split(separator: " ").map(String.init)
        let context = try ZMQContext()
        heartbeatContext = context
        if comm.rank != 0 { tap.activity = activity }
        heartbeat = try HeartbeatSender(context: context, endpoint: parts[0], serverKey: parts[1], rank: comm.rank, activity: activity,
                                        period: min(1, options.heartbeatTimeout / 4))
    }

    deinit {
        metricsEndpoint?.stop()
        heartbeat?.stop()
        receiver?.stop()
    }

    /// Runs rounds until `shutdown` (control port or signal) or the configured number of scans.
    public func run() throws {
        receiver?.start()
        defer { receiver?.stop(); receiver = nil }
        var idle = false
        while true {
            var plan = RoundPlan()
            // Rank 0 waits for messages before the barrier, so the others sleep
            // in it rather than spin in the broadcast while nothing happens.
            activity.nextRound()
            activity.set(comm.rank == 0 ? "planning" : "waiting for the round's plan")
            if let coordinator { plan = coordinator.plan(receiver: receiver!, counters: counters, waited: idle) }
            if comm.rank == 0 { activity.set("waiting for the round's plan") }
            if idle { try comm.sleepingBarrier(poll: .milliseconds(1)) }
            let encoded = comm.rank == 0 ? String(decoding: try JSONEncoder().encode(plan), as: UTF8.self) : ""
            plan = try JSONDecoder().decode(RoundPlan.self, from: Data(try comm.broadcast(encoded, root: 0).utf8))
            try play(plan)
            idle = plan.idle
            if plan.shutdown { break }
        }
        if comm.rank == 0 { log("stream: shut down after \(reports.count) scan(s)") }
    }

    private func play(_ plan: RoundPlan) throws {
        if let s = plan.settings, let problem = try apply(s) {
            // Every rank reaches the same verdict from the same state, so none applied it.
            lastRefusedSet = problem
            if comm.rank == 0 { log("stream: set refused: \(problem)") }
        }
        if plan.abort, let w = work {
            w.discardRawFile()
            metrics?.scanAborted()
            if comm.rank == 0 { log("stream: scan \(w.start.scanID) aborted; ready for the next scan") }
            reports.append(ScanReport(scanID: w.start.scanID, path: nil, frames: w.start.frames, placed: 0, received: 0,
                                      rejected: 0, iterations: w.engine?.iteration ?? 0, fourierError: .nan,
                                      secondsAfterLastFrame: 0, aborted: true))
            work = nil
        }
        if let s = plan.start {
            scansStarted += 1
            let w = ScanWork(start: s, options: options, rank: comm.rank, fileBase: plan.fileBase ?? StreamOptions.fileBase(for: s.scanID),
                             budgetBytes: budgetBytes)
            work = w
            w.warmUp()
            if options.saveRaw && s.readout != nil {
                try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
                try w.openRawFile((options.outputDirectory as NSString).appendingPathComponent(w.fileBase + "-raw.cxi"), comm: comm)
            }
            if comm.rank == 0 {
                log("stream: scan \(s.scanID): \(s.frames) frames of \(s.shapeY)x\(s.shapeX) \(s.dtype), \(s.darks) darks\(s.readout == nil ? "" : ", raw")")
            }
        }
        activity.set("receiving dealt frames")
        try deal(plan)
        activity.set("preparing the scan")
        if plan.prepare, let w = work {
            if let problem = try w.prepare(comm: comm) {
                if comm.rank == 0 { log("stream: scan \(w.start.scanID) cannot be solved: \(problem); skipped") }
                coordinator?.discard(reason: problem)
                metrics?.scanEnded(written: false, latencies: [])
                try w.closeRawFile()
                work = nil
            } else if comm.rank == 0 {
                let tiles = w.layout.map { "object \($0.objectHeight)x\($0.objectWidth) as \($0.rows)x\($0.columns) tiles" }
                    ?? "tiles once the frames' positions are in"
                let steps = w.steps.sorted { $0.value < $1.value }.map { String(format: "%@ at %.2f s", $0.key, $0.value) }
                log("stream: scan \(w.start.scanID): clean frames \(w.frameSize)x\(w.frameSize), \(tiles); prepared (\(steps.joined(separator: ", ")))")
            }
        }
        if let p = plan.positions, let w = work {
            if let problem = try w.tile(positions: p, comm: comm) {
                if comm.rank == 0 { log("stream: scan \(w.start.scanID) cannot be solved: \(problem); skipped") }
                coordinator?.discard(reason: problem)
                metrics?.scanEnded(written: false, latencies: [])
                try w.closeRawFile()
                work = nil
            } else if comm.rank == 0, let l = w.layout {
                log("stream: scan \(w.start.scanID): positions from the frames; object \(l.objectHeight)x\(l.objectWidth) as \(l.rows)x\(l.columns) tiles")
            }
        }
        if let w = work {
            activity.set("cleaning")
            w.cleanQueued(budget: options.cleanPerRound)
            activity.set("routing clean frames")
            if w.prepared { try w.route(comm: comm) }
        }
        if plan.solve || (plan.finish && work?.engine == nil && work?.prepared == true), let w = work {
            activity.set("starting the solver")
            if let problem = try w.startSolver(comm: comm) {
                if comm.rank == 0 { log("stream: scan \(w.start.scanID): the solver cannot start: \(problem)") }
            } else if comm.rank == 0, plan.solve {
                log("stream: scan \(w.start.scanID): solver started with \(w.engine!.activeFrames) local frames on rank 0, first probe from \(w.probeOrigin)")
                if let warning = w.probeWarning { log("stream: scan \(w.start.scanID): warning: \(warning)") }
                if let note = w.truthNote { log("stream: scan \(w.start.scanID): warning: \(note)") }
            }
        }
        if let w = work, let running = w.engine, plan.iterate, !plan.finish {
            activity.set("iterating")
            if let k = plan.finalIteration, !options.engine.engines.isEmpty {
                let wanted = options.engine.running(at: k)
                if wanted.algorithm != running.name {
                    try w.continueEngine(with: wanted)
                    if comm.rank == 0 { log("stream: scan \(w.start.scanID): final iteration \(k + 1): \(wanted.algorithm) takes over from \(running.name)") }
                }
            }
            let stats = try w.engine!.iterate()
            if comm.rank == 0, Date().timeIntervalSince(lastProgress) >= 2 {
                lastProgress = Date()
                log(String(format: "stream: scan %@ iteration %d fourier %.4e, %d of %d frames placed", w.start.scanID,
                           stats.iteration + 1, stats.fourierError, counters.reduce(0) { $0 + $1[4] }, w.start.frames))
            }
        }
        activity.set("publishing")
        if plan.publish, let w = work, w.engine != nil { try publish(w, final: false) }
        activity.set("writing the scan")
        if plan.finish, let w = work { try finish(w, ingest: plan.ingest ?? IngestCounts()) }
        activity.set("exchanging counts")
        try exchangeCounters()
        postStatus()
    }

    /// What runs after a scan's last frame, for the log.
    private var finalPhase: String {
        options.engine.engines.isEmpty ? "iterations \(options.finalIterations)"
            : "phase \(EngineRun.text(options.engine.engines))"
    }

    /// A `set` takes effect whole or not at all: every value is checked
    /// against the session first. Returns why it was refused, or nil.
    private func apply(_ s: LiveSettings) throws -> String? {
        var next = options
        if let n = s.finalIterations {
            guard next.engine.engines.isEmpty else {
                return "set: final_iterations: the final phase is the engine sequence \(EngineRun.text(next.engine.engines)) (\(next.finalLength) iterations)"
            }
            next.finalIterations = n
        }
        if let k = s.publishEvery { next.publishEvery = k }
        if let a = s.algorithm {
            if let problem = EngineRegistry.problem(naming: a) { return "set: \(problem)" }
            next.engine.algorithm = a
        }
        if let b = s.beta { next.engine.beta = b }
        let engineChanged = s.algorithm != nil || s.beta != nil
        if engineChanged, let problem = next.engine.problems().first { return "set: \(problem)" }
        if engineChanged, let w = work, let problem = w.handoverProblem(to: next, ranks: comm.size) {
            return "set: algorithm \(next.engine.algorithm): \(problem)"
        }
        if engineChanged { try work?.continueEngine(with: next.engine) }
        options = next
        coordinator?.options = options
        if comm.rank == 0 { log("stream: settings now: final \(finalPhase), \(options.engine.algorithm) beta \(options.engine.beta), publish every \(options.publishEvery)") }
        return nil
    }

    // MARK: Dealing

    private func deal(_ plan: RoundPlan) throws {
        guard !plan.deals.isEmpty else { return }
        if comm.rank == 0 {
            let outgoing = coordinator!.takeDealt()
            var buffers: [[UInt8]] = []
            var requests: [Request] = []
            for (dest, frames) in outgoing.enumerated() where dest != 0 {
                for f in frames { buffers.append(Self.pack(f)) }
            }
            var k = 0
            for (dest, frames) in outgoing.enumerated() where dest != 0 {
                for _ in frames {
                    requests.append(try buffers[k].withUnsafeBufferPointer { try comm.isend($0, to: dest, tag: 20) })
                    k += 1
                }
            }
            work?.accept(outgoing[0])
            try Request.waitAll(requests)
            withExtendedLifetime(buffers) {}
        } else {
            var frames: [DealtFrame] = []
            for _ in 0..<plan.deals[comm.rank] {
                let (bytes, _) = try comm.receive(UInt8.self, from: 0, tag: 20)
                if let f = Self.unpack(bytes) { frames.append(f) } else { work?.reject("a dealt frame of \(bytes.count) bytes cannot be unpacked") }
            }
            work?.accept(frames)
        }
    }

    /// [flags][arrival: 8][header length: 4][header JSON][payload], little-endian.
    static func pack(_ f: DealtFrame) -> [UInt8] {
        let header = (try? JSONEncoder().encode(f.header)).map { Array($0) } ?? []
        var out: [UInt8] = [(f.dark ? 1 : 0) | (f.centring ? 2 : 0)]
        withUnsafeBytes(of: f.arrival.bitPattern.littleEndian) { out += $0 }
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { out += $0 }
        out += header
        out += f.payload
        return out
    }

    static func unpack(_ bytes: [UInt8]) -> DealtFrame? {
        guard bytes.count >= 13 else { return nil }
        let arrival = bytes.withUnsafeBytes { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 1, as: UInt64.self))) }
        let length = Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 9, as: UInt32.self)) })
        guard bytes.count >= 13 + length, let header = try? JSONDecoder().decode(FrameHeader.self, from: Data(bytes[13..<(13 + length)])) else {
            return nil
        }
        return DealtFrame(header: header, payload: Array(bytes[(13 + length)...]), arrival: arrival, dark: bytes[0] & 1 != 0,
                          centring: bytes[0] & 2 != 0)
    }

    // MARK: Counters, status and publishing

    private func exchangeCounters() throws {
        let k = Self.counterFields
        var all = [Int](repeating: 0, count: comm.size * k)
        if let w = work {
            let mine = [w.queue.count, w.darksUsed, w.cleaned, w.rejected, w.placed, w.engine?.iteration ?? 0,
                        Int(Date().timeIntervalSince1970 * 1000), Int(((w.latencies.last ?? 0) * 1e6).rounded())]
            for i in 0..<k { all[comm.rank * k + i] = mine[i] }
        } else {
            all[comm.rank * k + 6] = Int(Date().timeIntervalSince1970 * 1000)
        }
        try all.withUnsafeMutableBufferPointer { try comm.allreduce($0, op: .sum) }
        counters = (0..<comm.size).map { Array(all[($0 * k)..<(($0 + 1) * k)]) }
        // Every rank sees the same counts, so all of them gather together, only when a rank rejected something new.
        let rejections = counters.reduce(0) { $0 + $1[3] }
        if rejections != rejectionsCounted {
            rejectionsCounted = rejections
            try gatherRejections()
        }
    }

    /// Collective: the frames each rank refused since the last gathering, to rank 0's coordinator.
    private func gatherRejections() throws {
        let mine = (try? JSONEncoder().encode(work?.takeNewRejections() ?? [])).map { Array($0) } ?? Array("[]".utf8)
        let (bytes, counts) = try comm.gatherv(mine, root: 0)
        guard let coordinator else { return }
        var offset = 0
        for n in counts {
            if let list = try? JSONDecoder().decode([RankRejection].self, from: Data(bytes[offset..<(offset + n)])) {
                coordinator.ranksRejected(list)
            }
            offset += n
        }
    }

    private var lastProgress = Date()

    private func postStatus() {
        guard comm.rank == 0, let coordinator, let receiver else { return }
        var s = coordinator.status(counters: counters)
        // Per-rank counts as of this round; their heartbeats are added by the receiving thread.
        s["ranks"] = counters.enumerated().map { r, c -> [String: Any] in
            ["rank": r, "queued": c[0], "darks": c[1], "cleaned": c[2], "rejected": c[3], "placed": c[4],
             "latency_s": Double(c[7]) / 1e6]
        }
        // The latest frame's time from arrival at rank 0 to its place in the solve, the slowest rank's.
        if work != nil, let slowest = counters.map({ $0[7] }).max(), slowest > 0 { s["placement_latency_s"] = Double(slowest) / 1e6 }
        s["iteration"] = counters.first?[5] ?? 0
        s["fourier_error"] = work?.engine?.history.last?.fourierError ?? 0
        s["scans_done"] = reports.count
        s["detector"] = options.connect
        if let lastRefusedSet { s["last_refused_set"] = lastRefusedSet }
        if work != nil {
            metrics?.scanProgress(scan: scansStarted, cleaned: counters.reduce(0) { $0 + $1[2] }, placed: counters.reduce(0) { $0 + $1[4] },
                                  iteration: counters.first?[5] ?? 0)
        }
        receiver.post(status: s)
    }

    /// Collective: the object (subsampled to at most `publishSide` a side),
    /// the probe, the latest clean frame and the STXM image on the `rec` topic.
    private func publish(_ w: ScanWork, final: Bool) throws {
        guard options.publish != nil, let engine = w.engine, let layout = w.layout else { return }
        let step = max(1, (max(layout.objectHeight, layout.objectWidth) + options.publishSide - 1) / options.publishSide)
        let object = try TileGather.object(engine: engine, layout: layout, comm: comm, step: step)
        let stxm = try w.scanImage(comm: comm)
        let nrmse = try w.measureTruth(comm: comm)
        // The latest frame placed on any rank: the one with the highest index wins.
        let latest = try comm.allreduce(w.latestFrame?.index ?? -1, op: .max)
        let owner = try comm.allreduce(w.latestFrame?.index == latest ? comm.rank : 0, op: .max)
        var frame = [Float](repeating: 0, count: w.frameSize * w.frameSize)
        if latest >= 0 {
            if comm.rank == owner, let f = w.latestFrame { frame = f.photons }
            frame = try comm.broadcast(frame, root: owner)
        }
        guard comm.rank == 0, let object, let stxm, let receiver else { return }
        let probe = engine.currentProbe
        let now = Date().timeIntervalSince1970
        var header: [String: Any] = [
            "scan_id": w.start.scanID, "iteration": engine.iteration, "final": final, "published_at": now,
            "object_full_shape": [layout.objectHeight, layout.objectWidth], "pixel_size_m": w.geometry?.samplePixelSize ?? 0,
            "fourier_error": engine.history.last?.fourierError ?? 0, "byteorder": "little",
            "object_shape": [object.height, object.width], "object_step": step, "probe_shape": [probe.height, probe.width],
            "frame_index": latest, "frame_shape": [w.frameSize, w.frameSize],
            "stxm_shape": [stxm.gridHeight, stxm.gridWidth], "stxm_step_m": stxm.gridStep,
            "stxm_origin_m": [stxm.gridOriginY, stxm.gridOriginX],
        ]
        if let nrmse, nrmse.isFinite { header["truth_nrmse"] = nrmse }
        let json = (try? JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])).map { Array($0) } ?? []
        func complex(_ a: [Complex<Float>]) -> [UInt8] {
            a.flatMap { [$0.real.bitPattern.littleEndian, $0.imaginary.bitPattern.littleEndian] }.withUnsafeBytes { Array($0) }
        }
        func real(_ a: [Float]) -> [UInt8] { a.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Array($0) } }
        receiver.publish([Array("rec".utf8), json, complex(object.values), complex(probe.values), real(frame),
                                    real(stxm.transmissionImage.map(Float.init))])
        // What `rec` does not carry, on its own topic so `rec`'s parts stay as documented.
        let grid = [stxm.gridHeight, stxm.gridWidth]
        let aux: [String: Any] = [
            "scan_id": w.start.scanID, "iteration": engine.iteration, "published_at": now, "byteorder": "little",
            "parts": [["name": "mask", "dtype": "uint8", "shape": [w.frameSize, w.frameSize]],
                      ["name": "dpc_y", "dtype": "float32", "shape": grid], ["name": "dpc_x", "dtype": "float32", "shape": grid],
                      ["name": "positions_m", "dtype": "float32", "shape": [w.positions.count, 2]]],
        ]
        let auxJSON = (try? JSONSerialization.data(withJSONObject: aux, options: [.sortedKeys])).map { Array($0) } ?? []
        receiver.publish([Array("aux".utf8), auxJSON, w.validPixels, real(stxm.dpcYImage.map(Float.init)),
                          real(stxm.dpcXImage.map(Float.init)), real(w.positions.flatMap { [Float($0.y), Float($0.x)] })])
    }

    // MARK: End of a scan

    private func finish(_ w: ScanWork, ingest: IngestCounts) throws {
        let began = Date()
        try w.closeRawFile()
        let totals = try [w.darksUsed, w.cleaned, w.rejected, w.placed].map { try comm.allreduce($0, op: .sum) }
        // Received but never cleaned (a shutdown cut the scan short): so received = darks + cleaned + rejected + unprocessed.
        let unprocessed = ingest.undealt + (try comm.allreduce(w.unprocessed, op: .sum))
        let lastPlaced = try comm.allreduce(w.lastPlaced, op: .max)
        let searched = try comm.allreduce(w.cleaner?.searchedFrames ?? 0, op: .sum)
        var path: String? = nil
        var fourier = Double.nan
        var latency = (median: Double.nan, p99: Double.nan)
        var placedLatencies: [Double] = []
        if let engine = w.engine {
            // The final iterations ran one a round before this one (rank 0 counted them).
            let finalRun = ingest.finalRun
            if let by = ingest.finalCutBy, comm.rank == 0 {
                log(String(format: "stream: scan %@: the final iterations were cut to %d of %d by %@", w.start.scanID, finalRun,
                           options.finalLength, by == "shutdown" ? "shutdown" : String(format: "--final-seconds %g", options.finalSeconds)))
            }
            fourier = engine.history.last?.fourierError ?? .nan
            let (latencies, _) = try comm.gatherv(w.latencies, root: 0)
            let sorted = latencies.sorted()
            placedLatencies = latencies
            func quantile(_ q: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
            // Rank 0 makes sure the name is still free (another writer may have taken it during the scan).
            var base = w.fileBase
            if comm.rank == 0, FileManager.default.fileExists(atPath: (options.outputDirectory as NSString).appendingPathComponent(base + ".cxi")) {
                base = StreamOptions.freeBase(for: base, in: options.outputDirectory, taken: [])
            }
            base = try comm.broadcast(base, root: 0)
            let plain = StreamOptions.fileBase(for: w.start.scanID)
            let p = (options.outputDirectory as NSString).appendingPathComponent(base + ".cxi")
            var rejections = ingest.reasons
            for (reason, n) in ingest.rankReasons { rejections[reason, default: 0] += n }
            var report: [String: Any] = [
                "scan_id": w.start.scanID, "frames": w.start.frames, "darks": w.start.darks,
                "received": ingest.received, "darks_used": totals[0], "cleaned": totals[1],
                "rejected": ingest.rejected + totals[2], "placed": totals[3], "missing": w.start.frames - totals[3],
                "interference_searches": searched,
                "stop_received": ingest.stopReceived, "sender_restarts": ingest.senderRestarts,
                "rejections": rejections, "iterations": engine.iteration, "final_iterations": options.finalLength, "final_seconds": options.finalSeconds,
                "final_iterations_run": finalRun, "final_cut_by": ingest.finalCutBy ?? "", "file": base + ".cxi",
                "unprocessed": unprocessed,
                "latency_median_s": quantile(0.5), "latency_p99_s": quantile(0.99),
                "first_arrival_unix_s": ingest.firstArrival ?? 0, "last_arrival_unix_s": ingest.lastArrival ?? 0,
                "last_placed_unix_s": lastPlaced, "prepared_unix_s": w.preparedAt, "raw_file": w.rawPath ?? "",
            ]
            if base != plain {
                report["file_note"] = "scan id '\(w.start.scanID)' is written as \(base).cxi: \(plain).cxi exists or belongs to an earlier scan"
                if comm.rank == 0 { log("stream: \(report["file_note"]!)") }
            }
            latency = (quantile(0.5), quantile(0.99))
            // The final object against the truth, for the file (and the final `rec`).
            if let nrmse = try w.measureTruth(comm: comm) {
                report["truth_nrmse"] = nrmse.isFinite ? nrmse : nil
                if comm.rank == 0 { log(String(format: "stream: scan %@: NRMSE against the truth %.4f", w.start.scanID, nrmse)) }
            }
            try FileManager.default.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
            do {
                try CollectiveOutput.write(p, comm: comm, size: w.fileSize) { try w.write(to: $0, comm: comm, report: report) }
                path = p
            } catch let e as OutputError {
                // Every rank failed alike (no space, a name taken): the session goes on to the next scan.
                if comm.rank == 0 { log("stream: scan \(w.start.scanID) NOT written: \(e)") }
            }
            try publish(w, final: true)
        }
        let seconds = Date().timeIntervalSince1970 - (ingest.lastArrival ?? began.timeIntervalSince1970)
        let r = ScanReport(scanID: w.start.scanID, path: path, frames: w.start.frames, placed: totals[3],
                           received: ingest.received, rejected: ingest.rejected + totals[2], iterations: w.engine?.iteration ?? 0,
                           fourierError: fourier, secondsAfterLastFrame: seconds, aborted: false,
                           firstArrival: ingest.firstArrival ?? 0, lastArrival: ingest.lastArrival ?? 0, lastPlaced: lastPlaced,
                           latencyMedian: latency.median, latency99: latency.p99, prepared: w.preparedAt)
        reports.append(r)
        metrics?.scanProgress(scan: scansStarted, cleaned: totals[1], placed: totals[3], iteration: w.engine?.iteration ?? 0)
        metrics?.scanEnded(written: path != nil, latencies: placedLatencies)
        if comm.rank == 0 {
            let missing = w.start.frames - totals[3]
            var line = "stream: scan \(w.start.scanID) done: \(ingest.received) frame messages received, \(totals[0]) darks used, \(totals[1]) cleaned, \(ingest.rejected + totals[2]) rejected, \(totals[3]) of \(w.start.frames) placed"
            if missing > 0 { line += " (\(missing) missing\(ingest.stopReceived ? "" : ": the sender went silent without 'stop'"))" }
            line += String(format: ", %d iterations, fourier %.4e", r.iterations, fourier)
            if let path { line += String(format: "; wrote %@ %.1f s after the last frame", path, seconds) } else { line += w.engine == nil ? "; nothing to write" : "; not written (see above)" }
            log(line)
            for (reason, n) in ingest.reasons.sorted(by: { $0.key < $1.key }) { log("stream:   rejected \(n) x \(reason)") }
        }
        for reason in w.rejectionReasons.prefix(5) { log("stream: rank \(comm.rank) rejected \(reason)") }
        for warning in w.warnings.prefix(5) { log("stream: rank \(comm.rank): \(warning)") }
        work = nil
        coordinator?.scanFinished()
    }
}

public struct StreamError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where a session's log lines go beside the rank's log file.
private final class LogTap: @unchecked Sendable {
    private let lock = NSLock()
    private var _receiver: StreamReceiver?
    private var _activity: RankActivity?
    var receiver: StreamReceiver? {
        get { lock.lock(); defer { lock.unlock() }; return _receiver }
        set { lock.lock(); _receiver = newValue; lock.unlock() }
    }
    var activity: RankActivity? {
        get { lock.lock(); defer { lock.unlock() }; return _activity }
        set { lock.lock(); _activity = newValue; lock.unlock() }
    }

    func forward(_ line: String) {
        if let receiver {
            receiver.publishLog(line, rank: 0)
        } else if let activity, LogLevel.of(line) != .info {
            activity.note(line)
        }
    }
}
