import Foundation
import Ingest
import Testing
@testable import Streaming

/// Rank 0's decisions without MPI: what is dealt to whom, what is counted
/// as rejected and why, and when a scan is prepared, solved and finished.
@Suite struct CoordinatorTests {
    static func start(frames: Int = 6, darks: Int = 0, id: String = "s", translations: Bool = true) -> ScanStart {
        ScanStart(scanID: id, frames: frames, darks: darks, shapeY: 4, shapeX: 4, dtype: "float32", energy: 1e-16,
                  distance: 0.1, xPixelSize: 1e-5, yPixelSize: 1e-5,
                  translations: translations ? (0..<frames).map { [Double($0) * 1e-7, 0] } : nil)
    }

    static func frame(_ index: Int, identifier: Int? = nil, position: Bool = false) -> Inbound {
        .frame(FrameHeader(shapeY: 4, shapeX: 4, dtype: "float32", identifier: identifier ?? index, index: index,
                           posy: position ? Double(index) * 1e-7 : nil, posx: position ? 0 : nil),
               payload: [UInt8](repeating: 0, count: 64), arrival: 0)
    }

    @Test func withoutTranslationsTheFramesPositionsTileTheScanOnceAllAreIn() {
        let (c, q) = make(ranks: 1, credit: 100)
        _ = q.put(.start(Self.start(frames: 3, translations: false)))
        _ = q.put(Self.frame(0, position: true))
        _ = q.put(Self.frame(1))                      // no position: unusable
        _ = q.put(Self.frame(1, position: true))
        var plan = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(plan.start != nil && plan.positions == nil)
        #expect(c.counts.reasons.keys.contains { $0.contains("no posy and posx") })
        _ = c.takeDealt()
        _ = q.put(Self.frame(2, position: true))
        plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 2), waited: false)
        #expect(plan.positions == [[0, 0], [1e-7, 0], [2e-7, 0]])
        #expect(!plan.solve, "no solve before the tiles exist")
    }

    /// A frame a rank refused (a NaN pixel) frees its index: the resend is
    /// dealt, not rejected as a duplicate, and the reason reaches the report.
    @Test func aFrameRefusedOnARankCanBeSentAgain() {
        let (c, q) = make(ranks: 1, credit: 100)
        _ = q.put(.start(Self.start(frames: 3)))
        _ = q.put(Self.frame(1))
        _ = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(c.takeDealt()[0].map(\.header.index) == [1])
        _ = q.put(Self.frame(1))
        _ = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(c.counts.reasons.keys.contains { $0.contains("frame 1: duplicate") }, "before the release, a copy is a duplicate")
        c.ranksRejected([RankRejection(scanID: "s", index: 1, dark: false, reason: "frame 1: pixel (0, 0) is not finite"),
                         RankRejection(scanID: "other", index: 2, dark: false, reason: "another scan's")])
        _ = q.put(Self.frame(1))
        _ = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(c.takeDealt()[0].map(\.header.index) == [1])
        #expect(c.counts.rankReasons == ["frame 1: pixel (0, 0) is not finite": 1])
        #expect(c.counts.rejected == 1)
    }

    /// A refused start names its reason in the status; its frames are outside any scan.
    @Test func aRefusedStartIsReportedInTheStatus() {
        let (c, q) = make(ranks: 1, credit: 100)
        var bad = Self.start(frames: 3)
        bad.energy = 800
        _ = q.put(.start(bad))
        _ = q.put(Self.frame(0))
        let plan = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(plan.start == nil)
        let status = c.status(counters: Self.counters(ranks: 1))
        #expect(status["outside_scan_rejected"] as? Int == 2)
        #expect(((status["last_rejected_start"] as? [String: Any])?["reason"] as? String)?.contains("is it in eV?") == true)
    }

    /// Counters as the ranks report them: queued, darks, cleaned, rejected, placed, iteration, heartbeat.
    static func counters(ranks: Int, queued: [Int]? = nil, processed: Int = 0, placed: Int = 0) -> [[Int]] {
        (0..<ranks).map { r in [queued?[r] ?? 0, 0, r == 0 ? processed : 0, 0, r == 0 ? placed : 0, 0, 0] }
    }

    func make(ranks: Int = 2, credit: Int = 2) -> (Coordinator, IngestQueue) {
        var options = StreamOptions()
        options.credit = credit
        options.solveAfter = 0.5
        options.finalIterations = 2
        options.finalSeconds = 0
        return (Coordinator(options: options, ranks: ranks), IngestQueue(capacityFrames: 100, capacityBytes: 1 << 20))
    }

    @Test func framesAreDealtByCreditAndNeverBeyondIt() {
        let (c, q) = make(ranks: 2, credit: 2)
        _ = q.put(.start(Self.start(frames: 10)))
        var plan = c.plan(queue: q, counters: Self.counters(ranks: 2), waited: false)
        #expect(plan.start?.scanID == "s")
        // Clean frames: prepared at once (no darks, no centring).
        #expect(plan.prepare)
        for i in 0..<10 { _ = q.put(Self.frame(i)) }
        // Rank 1 still holds 2 frames: only rank 0 has room.
        plan = c.plan(queue: q, counters: Self.counters(ranks: 2, queued: [0, 2]), waited: false)
        #expect(plan.deals == [2, 0])
        #expect(c.takeDealt()[0].map(\.header.index) == [0, 1])
        plan = c.plan(queue: q, counters: Self.counters(ranks: 2, queued: [1, 0]), waited: false)
        #expect(plan.deals == [1, 2])
        #expect(!plan.finish)
    }

    @Test func duplicatesOutOfRangeAndStrayMessagesAreCountedWithTheirReasons() {
        let (c, q) = make(ranks: 1, credit: 100)
        _ = q.put(Self.frame(0))                                      // before start
        _ = q.put(.start(Self.start(frames: 0)))                     // unusable start
        var huge = Self.start(frames: 1, translations: false)
        huge.frames = 2_000_000_000                                   // would exhaust every rank's memory
        _ = q.put(.start(huge))
        _ = q.put(.rejected(reason: "message: unknown topic 'x'", kind: .message(.unknownTopic)))
        _ = q.put(.start(Self.start(frames: 3)))
        _ = q.put(Self.frame(1))
        _ = q.put(Self.frame(1))                                      // duplicate
        _ = q.put(Self.frame(7))                                      // beyond the scan
        _ = q.put(.stop(ScanStop(scanID: "other", sent: 0)))          // another scan's stop
        _ = q.put(.rejected(reason: "frame payload: 7 bytes, expected 64", kind: .frame(.malformed)))
        _ = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(c.outside.rejected == 4)
        #expect(c.outside.reasons.keys.contains { $0.contains("a scan has at most 10000000") })
        #expect(c.outside.received == 1)
        #expect(c.counts.received == 4)
        #expect(c.counts.rejected == 4)
        #expect(c.counts.reasons.keys.contains { $0.contains("frame 1: duplicate") })
        #expect(c.counts.reasons.keys.contains { $0.contains("index beyond the 3 frames") })
        #expect(c.counts.reasons.keys.contains { $0.contains("for scan 'other'") })
    }

    @Test func aScanEndsWhenEveryFrameIsPlacedAfterStop() {
        let (c, q) = make(ranks: 1, credit: 100)
        _ = q.put(.start(Self.start(frames: 2)))
        _ = q.put(Self.frame(0))
        _ = q.put(Self.frame(1))
        _ = q.put(.stop(ScanStop(scanID: "s", sent: 2)))
        var plan = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(plan.prepare && plan.deals == [2])
        _ = c.takeDealt()
        // Placed half: the solver starts (solve-after 0.5); not finished while a frame is queued.
        plan = c.plan(queue: q, counters: Self.counters(ranks: 1, queued: [1], processed: 1, placed: 1), waited: false)
        #expect(plan.solve && plan.iterate && !plan.finish)
        // Every frame in: the final iterations run one a round, then the scan is written.
        plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 2, placed: 2), waited: false)
        #expect(!plan.finish && !plan.iterate && c.phase == .final)
        for _ in 0..<2 {
            plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 2, placed: 2), waited: false)
            #expect(plan.iterate && !plan.finish)
        }
        plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 2, placed: 2), waited: false)
        #expect(plan.finish && !plan.iterate)
        #expect(plan.ingest?.received == 2 && plan.ingest?.stopReceived == true)
        #expect(plan.ingest?.finalRun == 2 && plan.ingest?.finalCutBy == nil)
        #expect(c.scan == nil)
    }

    /// Frames waiting beyond the ranks' credit come first, but the solver
    /// still iterates every fourth round (a scan behind another is solved too).
    @Test func aBacklogStillLeavesTheSolverAShareOfTheRounds() {
        let (c, q) = make(ranks: 1, credit: 2)
        _ = q.put(.start(Self.start(frames: 40)))
        for i in 0..<40 { _ = q.put(Self.frame(i)) }
        _ = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        _ = c.takeDealt()
        var iterated: [Bool] = []
        for round in 0..<8 {
            let plan = c.plan(queue: q, counters: Self.counters(ranks: 1, queued: [2], processed: 20 + round, placed: 20 + round), waited: false)
            _ = c.takeDealt()
            iterated.append(plan.iterate)
        }
        #expect(iterated.filter { $0 }.count == 2, "\(iterated)")
    }

    /// Abort and shutdown act in the round after they arrive, in the final phase too.
    @Test func abortAndShutdownActWithinOneRoundOfTheFinalPhase() {
        for request in [ControlRequest.abort, .shutdown] {
            let (c, q) = make(ranks: 1, credit: 100)
            _ = q.put(.start(Self.start(frames: 1)))
            _ = q.put(Self.frame(0))
            _ = q.put(.stop(ScanStop(scanID: "s", sent: 1)))
            _ = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
            _ = c.takeDealt()
            _ = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 1, placed: 1), waited: false)
            var plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 1, placed: 1), waited: false)
            #expect(c.phase == .final && plan.iterate)
            q.request(request)
            plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 1, placed: 1), waited: false)
            #expect(c.scan == nil)
            if request == .abort {
                #expect(plan.abort && !plan.finish)
            } else {
                #expect(plan.finish && plan.ingest?.finalCutBy == "shutdown" && plan.ingest?.finalRun == 1)
                #expect(c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false).shutdown)
            }
        }
    }

    @Test func anAbortAfterAStartInTheSameRoundWaitsForTheNextRound() {
        let (c, q) = make()
        _ = q.put(.start(Self.start()))
        _ = q.put(.abort(scanID: nil))
        var plan = c.plan(queue: q, counters: Self.counters(ranks: 2), waited: false)
        #expect(plan.start != nil && !plan.abort)
        plan = c.plan(queue: q, counters: Self.counters(ranks: 2), waited: false)
        #expect(plan.abort && plan.start == nil)
        #expect(c.scan == nil)
    }

    @Test func aStartForAnotherScanEndsTheOpenOneFirst() {
        let (c, q) = make(ranks: 1, credit: 100)
        _ = q.put(.start(Self.start(frames: 2, id: "a")))
        _ = q.put(Self.frame(0))
        _ = q.put(.start(Self.start(frames: 2, id: "b")))
        var plan = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(plan.start?.scanID == "a")
        _ = c.takeDealt()
        for _ in 0..<3 {
            plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 1, placed: 1), waited: false)
            #expect(plan.start == nil, "b waits while a's final iterations run")
        }
        plan = c.plan(queue: q, counters: Self.counters(ranks: 1, processed: 1, placed: 1), waited: false)
        #expect(plan.finish && plan.ingest?.scanID == "a")
        plan = c.plan(queue: q, counters: Self.counters(ranks: 1), waited: false)
        #expect(plan.start?.scanID == "b")
    }

    @Test func setRequestsAreCheckedByThePipelineParameterRules() {
        let ok = LiveSettings.parse(["final_iterations": 20, "algorithm": "raar", "beta": 0.9])
        #expect(ok.problems.isEmpty)
        #expect(ok.settings == LiveSettings(finalIterations: 20, algorithm: "raar", beta: 0.9))
        let bad = LiveSettings.parse(["beta": 2, "algorithm": "rar", "final_iterations": 2.5, "betta": 1])
        #expect(bad.settings == nil)
        #expect(bad.problems.contains { $0.hasPrefix("beta: 2") && $0.contains("out of range") })
        #expect(bad.problems.contains { $0.hasPrefix("algorithm:") && $0.contains("did you mean 'raar'") })
        #expect(bad.problems.contains { $0.hasPrefix("final_iterations: expected an integer") })
        #expect(bad.problems.contains { $0.hasPrefix("betta: unknown parameter (did you mean 'beta'?)") })
    }

    @Test func liveSettingsAreCheckedFieldByField() {
        #expect(LiveSettings(finalIterations: 5, algorithm: "raar", beta: 0.9, publishEvery: 0).problems().isEmpty)
        let bad = LiveSettings(finalIterations: -1, algorithm: "er", beta: 1.5, publishEvery: -2).problems()
        #expect(bad.count == 4)
        #expect(bad.contains { $0.hasPrefix("beta:") } && bad.contains { $0.hasPrefix("algorithm:") })
        // The same declaration decides a request and the settings it makes.
        #expect(LiveSettings.parse(["final_iterations": 500_000]).problems.isEmpty)
        #expect(LiveSettings(finalIterations: 500_000).problems().isEmpty)
        #expect(LiveSettings(finalIterations: 1_000_001).problems() == LiveSettings.parse(["final_iterations": 1_000_001]).problems)
        #expect(StreamOptions.fileBase(for: "../etc/passwd") == "_etc_passwd")
        #expect(StreamOptions.fileBase(for: "scan 42") == "scan_42")
    }
}

/// The fuzzer's seeds, replayed as rank 0 takes them: each does what it was
/// written to do, so the fuzzer starts from inputs that reach deep.
@Suite struct MessageReplayTests {
    func replay(_ seed: String) throws -> [String: Any] {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FuzzCorpus/messages/" + seed).path
        let built = MessageReplay.messages(in: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        var options = StreamOptions()
        options.outputDirectory = NSTemporaryDirectory()
        options.finalSeconds = 0
        return MessageReplay.play(built, options: options, ranks: 2, budgetBytes: Double(1 << 30))
    }

    @Test func aCleanScanIsDealtWhole() throws {
        let s = try replay("clean-scan")
        #expect(s["placed"] as? Int == 4 && s["rejected"] as? Int == 0, "\(s)")
    }

    @Test func framesCarryingTheirPositionsAreDealtWhole() throws {
        let s = try replay("positions-in-frames")
        #expect(s["placed"] as? Int == 2 && s["rejected"] as? Int == 0, "\(s)")
    }

    @Test func aRawScanWithADarkIsDealtWhole() throws {
        let s = try replay("raw-with-darks")
        // The dark and the frame dealt, nothing refused, the scan in its final phase.
        #expect(s["received"] as? Int == 2 && s["rejected"] as? Int == 0 && s["state"] as? String == "final", "\(s)")
    }

    @Test func anAbortClosesTheScan() throws {
        let s = try replay("abort")
        #expect(s["scan_id"] == nil && s["state"] as? String == "idle", "\(s)")
    }

    @Test func aStartInElectronvoltsIsRefusedNamingTheUnit() throws {
        let s = try replay("energy-in-ev")
        let refused = s["last_rejected_start"] as? [String: String]
        #expect(refused?["scan_id"] == "s1" && refused?["reason"]?.contains("is it in eV?") == true, "\(s)")
    }

    @Test func aStartRecordingItsOpticsIsDealtWhole() throws {
        let s = try replay("clean-scan-with-optics")
        #expect(s["placed"] as? Int == 4 && s["rejected"] as? Int == 0, "\(s)")
    }

    @Test func aStartWithOpticsInMicronsIsRefusedNamingTheValue() throws {
        let s = try replay("optics-in-microns")
        let refused = s["last_rejected_start"] as? [String: String]
        #expect(refused?["reason"]?.contains("'optics': diameter 240 m") == true, "\(s)")
        #expect(refused?["reason"]?.contains("is it in µm or nm?") == true, "\(s)")
    }

    @Test func aShortPayloadIsRejected() throws {
        let s = try replay("bad-payload")
        #expect(s["rejected"] as? Int == 1 && s["placed"] as? Int == 0, "\(s)")
    }
}
