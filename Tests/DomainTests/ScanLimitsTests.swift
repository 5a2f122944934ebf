import Foundation
import Ingest
import Recon
import SafeOutput
@testable import Streaming
import Testing

/// The shared checks of a scan's description, and the files written aside.
struct ScanLimitsTests {
    @Test func unitMistakesAreNamed() {
        #expect(ScanLimits.energyProblem(800 * PhysicalConstants.electronVolt) == nil)
        #expect(ScanLimits.energyProblem(800)?.contains("is it in eV? (800 eV is 1.282e-16 J") == true)
        #expect(ScanLimits.energyProblem(0.8)?.contains("is it in keV?") == true)
        #expect(ScanLimits.energyProblem(.nan) != nil && ScanLimits.energyProblem(-1) != nil)
        #expect(ScanLimits.distanceProblem(0.121) == nil && ScanLimits.distanceProblem(121)?.contains("in mm?") == true)
        #expect(ScanLimits.pixelSizeProblem(60e-6) == nil && ScanLimits.pixelSizeProblem(60)?.contains("in µm?") == true)
        #expect(ScanLimits.positionsProblem([(1e-6, -2e-6), (3e-6, 0)]) == nil)
        #expect(ScanLimits.positionsProblem([(1e-6, 0), (0, 2.5)])?.hasPrefix("position 1 is (0, 2.5) m") == true)
        #expect(ScanLimits.positionsProblem([(0, .infinity)]) == "position 0 is not finite")
    }

    @Test func theCostGrowsWithFramesAndObjectAndShrinksWithRanks() {
        let positions: [(y: Double, x: Double)] = (0..<400).map { (k: Int) -> (y: Double, x: Double) in
            (Double(k / 20) * 1e-7, Double(k % 20) * 1e-7)
        }
        let one = ScanCost(frames: 400, frameSize: 128, positions: positions, samplePixelSize: 2.4e-8, ranks: 1)
        // 20 steps of 100 nm over 24 nm pixels, plus the frame and the margins.
        let expectedHeight: Double = 19e-7 / 2.4e-8 + 128 + 9
        #expect(abs(one.objectHeight - expectedHeight) < 1e-9)
        let four = ScanCost(frames: 400, frameSize: 128, positions: positions, samplePixelSize: 2.4e-8, ranks: 4)
        #expect(four.bytesPerRank < one.bytesPerRank / 2)
        // Frames alone: 400 x 128^2 x 16 bytes on one rank.
        #expect(one.bytesPerRank > 400 * 128 * 128 * 16)
        #expect(one.problem(budgetBytes: 1e9) == nil)
        #expect(one.problem(budgetBytes: 1e6)?.contains("over the budget of 0.001 GB per rank") == true)
        // Positions in µm read as m: an object no grid can hold, refused before any Int is made of it.
        let inMicrometres: [(y: Double, x: Double)] = positions.map { (y: $0.y * 1e6, x: $0.x * 1e6) }
        let micro = ScanCost(frames: 400, frameSize: 128, positions: inMicrometres, samplePixelSize: 2.4e-8, ranks: 1)
        let problem = micro.problem(budgetBytes: Double.infinity) ?? ""
        #expect(problem.contains("are the positions in mm or µm"), "\(problem)")
    }

    func start(_ edit: (inout ScanStart) -> Void = { _ in }) -> ScanStart {
        var s = ScanStart(scanID: "s", frames: 4, darks: 0, shapeY: 64, shapeX: 64, dtype: "float32", energy: 1.28e-16,
                          distance: 0.121, xPixelSize: 60e-6, yPixelSize: 60e-6, translations: [[0, 0], [0, 1e-7], [1e-7, 0], [1e-7, 1e-7]])
        edit(&s)
        return s
    }

    func problem(_ s: ScanStart, budget: Double = .infinity) -> String? {
        ScanWork.problem(with: s, options: StreamOptions(), ranks: 2, budgetBytes: budget, maxMessageBytes: 1 << 20)
    }

    @Test func aStartIsCheckedBeforeAnythingIsSizedFromIt() {
        #expect(problem(start()) == nil)
        #expect(problem(start { $0.scanID = "" })?.contains("'scan_id'") == true)
        #expect(problem(start { $0.scanID = String(repeating: "a", count: 129) })?.contains("1 to 128 characters") == true)
        #expect(problem(start { $0.energy = 800 })?.contains("'energy'") == true)
        #expect(problem(start { $0.xPixelSize = 60 })?.contains("'x_pixel_size'") == true)
        #expect(problem(start { $0.translations = $0.translations!.map { $0.map { $0 * 1e3 } } })?.contains("are the positions in mm or µm") == true)
        #expect(problem(start { $0.translations = $0.translations!.map { $0.map { $0 * 1e6 + 1 } } })?.contains("'translations'") == true)
        // Without translations the shape checks still hold.
        #expect(problem(start { $0.translations = nil; $0.shapeY = 3; $0.shapeX = 5 })?.contains("square frames") == true)
        #expect(problem(start { $0.shapeY = 1_000_000; $0.shapeX = 1_000_000 })?.contains("not usable") == true)
        // A frame larger than the message limit can never arrive.
        #expect(problem(start { $0.shapeY = 1024; $0.shapeX = 1024 })?.contains("--max-message-mb") == true)
        #expect(problem(start { $0.translations = nil; $0.frames = 2_000_000 }, budget: 4e9)?.contains("over the budget") == true)
        #expect(problem(start { $0.gain = 0 })?.contains("'gain'") == true)
    }

    @Test func scanIDsMakeBoundedFileNamesThatAreNeverReused() throws {
        #expect(StreamOptions.fileBase(for: String(repeating: "é", count: 200)) == String(repeating: "_", count: 96))
        #expect(StreamOptions.fileBase(for: "...") == "scan")
        let dir = NSTemporaryDirectory() + "ns-names-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(StreamOptions.freeBase(for: "a/b", in: dir, taken: []) == "a_b")
        #expect(StreamOptions.freeBase(for: "a_b", in: dir, taken: ["a_b"]) == "a_b-2")
        try #require(FileManager.default.createFile(atPath: dir + "/a_b-raw.cxi", contents: Data()))
        try #require(FileManager.default.createFile(atPath: dir + "/a_b-2.cxi", contents: Data()))
        #expect(StreamOptions.freeBase(for: "a/b", in: dir, taken: []) == "a_b-3")
    }

    @Test func aPendingFileReplacesItsTargetOnlyWhenCommitted() throws {
        let dir = NSTemporaryDirectory() + "ns-pending-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let target = dir + "/out.cxi"
        try Data("old".utf8).write(to: URL(fileURLWithPath: target))
        let pending = PendingFile(target: target, token: "7")
        #expect((pending.temporary as NSString).deletingLastPathComponent == dir)
        try Data("new".utf8).write(to: URL(fileURLWithPath: pending.temporary))
        pending.discard()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "old")
        #expect(!FileManager.default.fileExists(atPath: pending.temporary))
        try Data("new".utf8).write(to: URL(fileURLWithPath: pending.temporary))
        try pending.commit()
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "new")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.cxi"])
        // Long names keep a short temporary (MPI-IO aborts on long ones); distinct targets, distinct temporaries.
        let a = PendingFile(target: dir + "/" + String(repeating: "n", count: 240) + ".cxi", token: "1")
        let b = PendingFile(target: dir + "/" + String(repeating: "n", count: 240) + "-raw.cxi", token: "1")
        #expect((a.temporary as NSString).lastPathComponent.utf8.count < 100 && a.temporary != b.temporary)
        // A link is the same file under another name.
        try FileManager.default.linkItem(atPath: target, toPath: dir + "/hard.cxi")
        #expect(throws: OutputError.self) {
            try FileIdentity.refuse(output: dir + "/hard.cxi", role: "the output", sameAs: [(role: "the scan", path: target)])
        }
        try FileIdentity.refuse(output: dir + "/absent.cxi", role: "the output", sameAs: [(role: "the scan", path: target)])
    }
}
