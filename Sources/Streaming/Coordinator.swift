import Foundation
import Ingest
import Recon
import SessionMetrics

/// Rank 0's decisions, one plan per round: which messages belong to the
/// open scan, which frames go to which rank (by credit: a rank gets frames
/// while it holds fewer than `credit`), and when a scan is ready to be
/// prepared, solved and finished. It makes no MPI calls, so it can be
/// tested without any.
final class Coordinator {
    /// `final`: every frame is in; the iterations after the last frame run, one a round.
    enum Phase: String { case idle, darks, centring, frames, final }

    var options: StreamOptions
    let ranks: Int
    private(set) var scan: ScanStart?
    private(set) var phase = Phase.idle
    private(set) var counts = IngestCounts()
    private var pendingDarks: [DealtFrame] = []
    private var pendingData: [DealtFrame] = []
    private var seenDarks = Set<Int>()
    private var seenData = Set<Int>()
    /// Positions carried by the frames, when `start` had no translations; nil once tiled.
    private var framePositions: [Int: [Double]]?
    private var deferred: [Inbound] = []
    private var outgoing: [[DealtFrame]]
    private var dealtThisScan = 0
    private var solving = false
    /// Rounds since the last one that iterated (cleaning's priority is bounded by it).
    private var roundsWithoutIteration = 0
    /// The final phase: when it began and the iterations it ran.
    private var finalStarted = Date()
    private var finalRun = 0
    private var endRequested = false
    private var shutdownRequested = false
    private var lastMessage = Date()
    private var dataWaitingSince: Date?
    private var nextRank = 0
    private var lastPublished = 0
    private(set) var scansFinished = 0
    /// Messages outside any scan (before `start`, after the end), with reasons.
    private(set) var outside = IngestCounts()
    /// The latest refused `start`, reported in every status until the next is accepted.
    private(set) var lastRejectedStart: (scanID: String, reason: String)?
    /// File-name bases given to this session's scans: a later scan never takes one.
    private var takenBases = Set<String>()
    /// The memory a scan's solve may take on each rank.
    let budgetBytes: Double
    private let log: ((String) -> Void)?
    /// Lifetime counters for Prometheus (`--metrics`, the viewer's /metrics).
    let metrics: SessionMetrics?

    init(options: StreamOptions, ranks: Int, budgetBytes: Double = .infinity, metrics: SessionMetrics? = nil, log: ((String) -> Void)? = nil) {
        self.options = options
        self.metrics = metrics
        self.ranks = ranks
        self.budgetBytes = budgetBytes
        self.log = log
        outgoing = Array(repeating: [], count: ranks)
    }

    /// Frames the ranks rejected (a NaN pixel, a frame that cannot be
    /// cleaned): their indices are free again, so a valid resend is placed,
    /// and their reasons go into the scan's report.
    func ranksRejected(_ rejections: [RankRejection]) {
        for r in rejections where r.scanID == counts.scanID && scan != nil {
            counts.rankReasons[String(r.reason.prefix(80)), default: 0] += 1
            metrics?.count(.frame(.cleaning))
            if r.dark {
                if phase == .darks { seenDarks.remove(r.index) }
            } else {
                seenData.remove(r.index)
                framePositions?[r.index] = nil
            }
        }
    }

    func takeDealt() -> [[DealtFrame]] {
        defer { outgoing = Array(repeating: [], count: ranks) }
        return outgoing
    }

    private func resetScan() {
        scan = nil
        phase = .idle
        pendingDarks.removeAll()
        pendingData.removeAll()
        seenDarks.removeAll()
        seenData.removeAll()
        framePositions = nil
        dealtThisScan = 0
        solving = false
        roundsWithoutIteration = 0
        finalRun = 0
        endRequested = false
        dataWaitingSince = nil
        lastPublished = 0
    }

    /// The scan could not be prepared (the same problem on every rank).
    func discard(reason: String) { resetScan() }

    func scanFinished() { scansFinished += 1 }

    private func rejectOutside(_ reason: String, _ kind: Rejection) {
        outside.reject(reason)
        if kind.isFrame { outside.received += 1 }
        metrics?.count(kind)
        if outside.rejected <= 20 || outside.rejected % 1000 == 0 { log?("stream: rejected (no scan open): \(reason)") }
    }

    private func reject(_ reason: String, _ kind: Rejection) {
        counts.reject(reason)
        metrics?.count(kind)
        if counts.rejected <= 20 || counts.rejected % 1000 == 0 { log?("stream: scan \(counts.scanID): rejected \(reason)") }
    }

    /// Takes what arrived and decides this round. `counters` are every
    /// rank's counters after the previous round.
    func plan(receiver: StreamReceiver, counters: [[Int]], waited: Bool) -> RoundPlan {
        plan(queue: receiver.queue, counters: counters, waited: waited)
    }

    func plan(queue: IngestQueue, counters: [[Int]], waited: Bool) -> RoundPlan {
        var plan = RoundPlan()
        // Messages wait in the queue (bounded) rather than here while a scan's final phase holds them back.
        let (items, requests) = queue.take(max: deferred.count >= 512 ? 0 : 512, wait: waited && deferred.isEmpty ? 0.05 : 0)
        deferred += items
        for r in requests {
            switch r {
            case .abort:
                if scan != nil { plan.abort = true; resetScan() }
            case .shutdown:
                shutdownRequested = true
            case .set(let s):
                var merged = plan.settings ?? LiveSettings()
                merged.finalIterations = s.finalIterations ?? merged.finalIterations
                merged.algorithm = s.algorithm ?? merged.algorithm
                merged.beta = s.beta ?? merged.beta
                merged.publishEvery = s.publishEvery ?? merged.publishEvery
                plan.settings = merged
            }
        }
        if StreamSignal.requested { shutdownRequested = true }
        if !plan.abort { takeMessages(&plan) }

        let queued = counters.reduce(0) { $0 + $1[0] }
        let processed = counters.reduce(0) { $0 + $1[1] + $1[2] + $1[3] }
        let placed = counters.reduce(0) { $0 + $1[4] }
        if scan != nil, !plan.abort, shutdownRequested {
            // Shutdown acts within this round: the scan is written with what is placed, and nothing more is taken.
            finish(&plan, cutBy: "shutdown")
        }
        if let s = scan, !plan.abort {
            let silent = Date().timeIntervalSince(lastMessage) > options.frameTimeout
            let ending = counts.stopReceived || endRequested || silent
            if phase == .darks {
                for f in pendingDarks { deal(f, to: nextRankRoundRobin()) }
                pendingDarks.removeAll()
                let waitedForDarks = dataWaitingSince.map { Date().timeIntervalSince($0) > 1 } ?? false
                if seenDarks.count >= s.darks || ending || waitedForDarks { phase = .centring }
            }
            if phase == .centring {
                let needed = options.preprocess.centre != nil || s.readout == nil ? 0 : min(options.centringFrames, s.frames)
                if pendingData.count >= needed || ending {
                    plan.prepare = true
                    let first = pendingData.prefix(needed)
                    pendingData.removeFirst(first.count)
                    for var f in first { f.centring = true; deal(f, to: nextRankRoundRobin()) }
                    phase = .frames
                }
            }
            if phase == .frames, let known = framePositions, known.count == s.frames || (ending && pendingData.isEmpty && queued == 0) {
                // Every position is in (or no more will come): tile now.
                // Frames that never came take a known position; they weigh 0.
                if let fill = known.values.first {
                    plan.positions = (0..<s.frames).map { known[$0] ?? fill }
                    framePositions = nil
                }
            }
            let tiled = framePositions == nil
            if phase == .frames {
                dealByCredit(counters: counters)
                let threshold = max(1, Int((options.solveAfter * Double(s.frames)).rounded(.up)))
                if !solving && tiled && placed >= threshold {
                    plan.solve = true
                    solving = true
                }
                // Iterate when the cleaning keeps up; with a backlog cleaning comes first, but the
                // solver still gets every fourth round, so a scan arriving behind another is solved too.
                plan.iterate = solving && (pendingData.count <= ranks * options.credit || roundsWithoutIteration >= 3)
                if pendingData.isEmpty && queued == 0 && processed >= dealtThisScan && ending
                    && outgoing.allSatisfy(\.isEmpty) && plan.positions == nil
                    && (tiled || framePositions?.isEmpty == true) {
                    // Every frame is in: the final iterations run from the next round, one a round, so
                    // control requests and status keep their pace.
                    phase = .final
                    finalStarted = Date()
                    finalRun = 0
                    plan.iterate = false
                    if !solving {
                        plan.solve = true
                        solving = true
                    }
                } else {
                    publishIfDue(&plan, counters: counters)
                }
            } else if phase == .final {
                let overTime = options.finalSeconds > 0 && Date().timeIntervalSince(finalStarted) >= options.finalSeconds
                if finalRun >= options.finalLength || overTime {
                    finish(&plan, cutBy: finalRun < options.finalLength ? "final_seconds" : nil)
                } else {
                    plan.iterate = true
                    plan.finalIteration = finalRun
                    finalRun += 1
                    publishIfDue(&plan, counters: counters)
                }
            }
        }
        roundsWithoutIteration = plan.iterate ? 0 : roundsWithoutIteration + 1
        let dealt = outgoing.map(\.count)
        if dealt.contains(where: { $0 > 0 }) { plan.deals = dealt }
        if scan == nil && !plan.finish {
            if shutdownRequested {
                // What is still waiting would start a scan the session will not finish.
                for item in deferred {
                    if case .frame(_, let payload, _) = item {
                        metrics?.frameReceived(bytes: payload.count)
                        rejectOutside("a frame after 'shutdown'", .frame(.noScan))
                    }
                }
                deferred.removeAll()
                plan.shutdown = true
            } else if deferred.isEmpty, options.scans.map({ scansFinished >= $0 }) ?? false {
                plan.shutdown = true
            }
        }
        let busy = plan.start != nil || plan.prepare || plan.solve || plan.finish || plan.abort || !plan.deals.isEmpty
            || solving || queued > 0 || !deferred.isEmpty || (scan != nil && phase == .frames && !pendingData.isEmpty)
        plan.idle = !busy
        return plan
    }

    /// Ends the open scan this round: its counts go to the ranks, which write it.
    /// `cutBy` names what ended the final iterations early, if anything did.
    private func finish(_ plan: inout RoundPlan, cutBy: String?) {
        plan.finish = true
        plan.iterate = false
        var ingest = counts
        // Frames received but never dealt: part of `received`, in no other count.
        ingest.undealt = pendingData.count + pendingDarks.count
        ingest.finalRun = finalRun
        ingest.finalCutBy = cutBy
        plan.ingest = ingest
        resetScan()
    }

    private func publishIfDue(_ plan: inout RoundPlan, counters: [[Int]]) {
        guard solving && options.publishEvery > 0 else { return }
        let iteration = counters.first?[5] ?? 0
        if iteration - lastPublished >= options.publishEvery {
            plan.publish = true
            lastPublished = iteration
        }
    }

    /// Moves messages from the queue into the scan, in arrival order, until
    /// one needs a round of its own (a second `start`, an `abort`).
    private func takeMessages(_ plan: inout RoundPlan) {
        while let item = deferred.first {
            switch item {
            case .start(let s):
                if let open = scan {
                    if s.scanID == open.scanID && plan.start == nil {
                        counts.senderRestarts += 1
                        log?("stream: scan \(s.scanID): the sender started again; frames are placed by index, duplicates counted once")
                        deferred.removeFirst()
                        lastMessage = Date()
                        continue
                    }
                    // Another scan: the open one ends with what it has, then this one starts.
                    endRequested = true
                    return
                }
                deferred.removeFirst()
                if let problem = ScanWork.problem(with: s, options: options, ranks: ranks, budgetBytes: budgetBytes,
                                                  maxMessageBytes: options.maxMessageMegabytes << 20) {
                    rejectOutside("scan '\(s.scanID.prefix(ScanWork.maxScanIDLength))' refused: \(problem)", .message(.scanRefused))
                    lastRejectedStart = (String(s.scanID.prefix(ScanWork.maxScanIDLength)), problem)
                    continue
                }
                resetScan()
                lastRejectedStart = nil
                scan = s
                let base = StreamOptions.freeBase(for: s.scanID, in: options.outputDirectory, taken: takenBases)
                takenBases.insert(base)
                plan.fileBase = base
                phase = .darks
                counts = IngestCounts()
                counts.scanID = s.scanID
                framePositions = s.translations == nil ? [:] : nil
                lastMessage = Date()
                plan.start = s
            case .frame(let h, let payload, let arrival):
                deferred.removeFirst()
                metrics?.frameReceived(bytes: payload.count)
                guard let s = scan else {
                    rejectOutside("frame \(h.index): no scan is open (before 'start' or after the scan ended)", .frame(.noScan))
                    continue
                }
                counts.received += 1
                counts.receivedBytes += payload.count
                counts.firstArrival = counts.firstArrival ?? arrival
                counts.lastArrival = arrival
                lastMessage = Date()
                if counts.stopReceived { reject("frame \(h.index): arrived after 'stop'", .frame(.afterStop)); continue }
                guard h.shapeY == s.shapeY, h.shapeX == s.shapeX else {
                    reject("frame \(h.index): shape \(h.shapeY)x\(h.shapeX), the scan's is \(s.shapeY)x\(s.shapeX)", .frame(.shape))
                    continue
                }
                let dark = h.identifier < s.darks
                if dark {
                    guard h.index < s.darks else { reject("dark \(h.index): index beyond the \(s.darks) darks announced", .frame(.index)); continue }
                    guard seenDarks.insert(h.index).inserted else { reject("dark \(h.index): duplicate", .frame(.duplicate)); continue }
                    guard phase == .darks else { reject("dark \(h.index): arrived after the dark statistics were made", .frame(.lateDark)); continue }
                    pendingDarks.append(DealtFrame(header: h, payload: payload, arrival: arrival, dark: true, centring: false))
                } else {
                    guard h.index < s.frames else { reject("frame \(h.index): index beyond the \(s.frames) frames announced", .frame(.index)); continue }
                    if framePositions != nil {
                        guard let y = h.posy, let x = h.posx else {
                            reject("frame \(h.index): no posy and posx, and 'start' had no translations", .frame(.position))
                            continue
                        }
                        if let problem = ScanLimits.positionsProblem([(y, x)]) {
                            reject("frame \(h.index): posy, posx: \(problem.replacingOccurrences(of: "position 0 ", with: ""))", .frame(.position))
                            continue
                        }
                        guard !seenData.contains(h.index) else { reject("frame \(h.index): duplicate", .frame(.duplicate)); continue }
                        framePositions![h.index] = [y, x]
                    }
                    guard seenData.insert(h.index).inserted else { reject("frame \(h.index): duplicate", .frame(.duplicate)); continue }
                    pendingData.append(DealtFrame(header: h, payload: payload, arrival: arrival, dark: false, centring: false))
                    dataWaitingSince = dataWaitingSince ?? Date()
                }
            case .stop(let st):
                deferred.removeFirst()
                guard let s = scan else { rejectOutside("stop: no scan is open", .message(.noScan)); continue }
                guard st.scanID == s.scanID else { reject("stop: for scan '\(st.scanID)', the open scan is '\(s.scanID)'", .message(.noScan)); continue }
                counts.stopReceived = true
                counts.stopArrival = Date().timeIntervalSince1970
                lastMessage = Date()
            case .abort(let id):
                guard let s = scan, id == nil || id == s.scanID else {
                    deferred.removeFirst()
                    rejectOutside("abort: \(id.map { "scan '\($0)' is not open" } ?? "no scan is open")", .message(.noScan))
                    continue
                }
                // An abort after a start in the same round waits for the next round.
                if plan.start != nil { return }
                deferred.removeFirst()
                plan.abort = true
                resetScan()
                return
            case .rejected(let reason, let kind):
                deferred.removeFirst()
                if kind.isFrame { metrics?.frameReceived(bytes: 0) }
                if scan != nil {
                    if kind.isFrame { counts.received += 1 }
                    reject(reason, kind)
                } else {
                    rejectOutside(reason, kind)
                }
            }
        }
    }

    private func nextRankRoundRobin() -> Int {
        defer { nextRank = (nextRank + 1) % ranks }
        return nextRank
    }

    private func deal(_ f: DealtFrame, to rank: Int) {
        outgoing[rank].append(f)
        dealtThisScan += 1
    }

    private func dealByCredit(counters: [[Int]]) {
        var room = (0..<ranks).map { options.credit - counters[$0][0] - outgoing[$0].count }
        while !pendingData.isEmpty && room.contains(where: { $0 > 0 }) {
            let r = nextRankRoundRobin()
            guard room[r] > 0 else { continue }
            deal(pendingData.removeFirst(), to: r)
            room[r] -= 1
        }
    }

    func status(counters: [[Int]]) -> [String: Any] {
        var s: [String: Any] = [
            "state": phase.rawValue, "scans_finished": scansFinished,
            "backlog": pendingData.count + pendingDarks.count,
            "outside_scan_rejected": outside.rejected,
        ]
        if let r = lastRejectedStart { s["last_rejected_start"] = ["scan_id": r.scanID, "reason": r.reason] }
        if let scan {
            s["scan_id"] = scan.scanID
            s["frames_expected"] = scan.frames
            s["darks_expected"] = scan.darks
            s["received"] = counts.received
            s["rejected"] = counts.rejected + counters.reduce(0) { $0 + $1[3] }
            s["cleaned"] = counters.reduce(0) { $0 + $1[2] }
            s["placed"] = counters.reduce(0) { $0 + $1[4] }
            s["stop_received"] = counts.stopReceived
            s["received_bytes"] = counts.receivedBytes
            s["rejections"] = counts.reasons.merging(counts.rankReasons, uniquingKeysWith: +)
            if let first = counts.firstArrival, let last = counts.lastArrival, last > first {
                s["received_hz"] = Double(counts.received - 1) / (last - first)
                s["received_mb_s"] = Double(counts.receivedBytes) / (last - first) / 1e6
            }
        }
        return s
    }
}

/// SIGINT, SIGTERM, or SIGUSR1/SIGUSR2 (SLURM's time-limit warning): the
/// session finishes the open scan, writes it and stops.
public enum StreamSignal {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    public static var requested: Bool { flag != 0 }

    public static func install() {
        for s in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] { signal(s) { _ in StreamSignal.flag = 1 } }
    }
}
