import CXI
import Foundation
import Numerics
import SwiftHDF5
import Testing
@testable import Viewer

/// What the files page may open and what it reads from a file: nothing
/// outside the folder, every size checked before it is read.
struct ResultFilesTests {
    let dir = NSTemporaryDirectory() + "ns-result-files-\(UUID().uuidString.prefix(8))"

    init() throws {
        try FileManager.default.createDirectory(atPath: dir + "/sub/deeper", withIntermediateDirectories: true)
    }

    func touch(_ name: String, _ text: String = "x", modified: Date = Date()) throws {
        let path = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: path)
    }

    func header(_ bytes: [UInt8]) throws -> [String: Any] {
        let n = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes[4..<(4 + n)])) as? [String: Any])
    }

    /// A body of the binary message as `T`s.
    func body<T>(_ bytes: [UInt8], _ name: String, as: T.Type) throws -> [T] {
        let n = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        let parts = try #require(try header(bytes)["parts"] as? [[String: Any]])
        let p = try #require(parts.first { $0["name"] as? String == name }, "no part \(name)")
        let offset = 4 + n + (p["offset"] as! Int), count = p["bytes"] as! Int
        return Array(bytes[offset..<(offset + count)]).withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    @Test func namesLeadingOutsideTheFolderAreRefused() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try touch("sub/a.cxi")
        try touch("notes.txt")
        let outside = NSTemporaryDirectory() + "ns-outside-\(UUID().uuidString.prefix(8)).cxi"
        try Data("secret".utf8).write(to: URL(fileURLWithPath: outside))
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.cxi", withDestinationPath: outside)
        let files = try ResultFiles(directory: dir)
        #expect(try files.resolve("sub/a.cxi") == files.root + "/sub/a.cxi")
        func refusal(_ name: String) -> String {
            do { return "accepted \(try files.resolve(name))" } catch { return "\(error)" }
        }
        #expect(refusal("../\(URL(fileURLWithPath: outside).lastPathComponent)").contains("without '..'"))
        #expect(refusal("sub/../../x.cxi").contains("without '..'"))
        #expect(refusal(outside).contains("relative to the files folder"))
        #expect(refusal("notes.txt").contains("only .cxi files"))
        #expect(refusal("link.cxi").contains("leads outside the files folder"))
        #expect(refusal("missing.cxi").contains("no such file"))
        #expect(refusal("").contains("empty"))
        #expect(refusal(String(repeating: "a", count: 2000) + ".cxi").contains("over 1024 bytes"))
        #expect(throws: ViewerError.self) { try ResultFiles(directory: dir + "/nothing-here") }
    }

    @Test func theListHoldsCXIFilesNewestFirstWithoutLinksOrHiddenFiles() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try touch("old.cxi", modified: Date(timeIntervalSinceNow: -3600))
        try touch("sub/deeper/new.cxi")
        try touch(".hidden.cxi")
        try touch("scan.h5")
        try FileManager.default.createSymbolicLink(atPath: dir + "/alias.cxi", withDestinationPath: dir + "/old.cxi")
        var deep = "d1/d2/d3/d4/d5/d6/d7"
        try FileManager.default.createDirectory(atPath: dir + "/" + deep, withIntermediateDirectories: true)
        deep += "/too-deep.cxi"
        try touch(deep)
        let (list, truncated) = try ResultFiles(directory: dir).list()
        #expect(list.map(\.name) == ["sub/deeper/new.cxi", "old.cxi"])
        #expect(!truncated)
    }

    @Test func theHistogramCountsEachValueInItsDecadeBin() {
        var h = LogHistogram()
        let values: [Float] = [0, -2, 1e-4, 1, 1.5, 10, 999, 1e8, .nan, .infinity]
        values.withUnsafeBufferPointer { h.add($0) }
        #expect(h.pixels == 10 && h.zeroOrBelow == 2 && h.under == 1 && h.over == 1 && h.nonFinite == 2)
        // Ten bins a decade from 10^-3: 1 and 1.5 in bin 30 (1 to 1.26) and 31 (1.26 to 1.58), 10 in 40, 999 in 59.
        #expect(h.counts[30] == 1 && h.counts[31] == 1 && h.counts[40] == 1 && h.counts[59] == 1)
        #expect(h.counts.reduce(0, +) == 4)
        #expect(abs(h.total - (0 - 2 + 1e-4 + 1 + 1.5 + 10 + 999 + 1e8)) < 1)
        #expect(h.maximum == 1e8)
        #expect(LogHistogram.edges.count == h.counts.count + 1)
    }

    @Test func aLargeObjectIsShownEveryStepthPixelAndItsPositionsLandOnIt() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/big.cxi"
        let (h, w) = (2100, 1500)
        let file = try HDF5File(path: path, mode: .truncate)
        let object = (0..<(h * w)).map { Complex<Float>(Float($0 % 1000), Float($0 / 1000)) }
        try file.write(object, to: CXIPaths.image, shape: [h, w])
        try file.write(scalar: 10e-9, to: "/entry_1/image_1/ns_pixel_size")
        try file.write([Complex<Float>](repeating: Complex(1, 0), count: 64 * 64), to: CXIPaths.illumination, shape: [64, 64])
        try file.write(Array(repeating: 0.5, count: 3), to: "/entry_1/image_1/process_1/ns_fourier_error", shape: [3])
        try file.write(string: "nanosurveyor", to: "/entry_1/image_1/process_1/program")
        try file.write(string: #"{"frames_received": 3}"#, to: "/entry_1/image_1/process_1/ns_stream_report")
        // Probe positions 0, 10 um, 20.3 um in y, 0 in x: translations are their negatives, (x, y, z).
        let positions: [(y: Double, x: Double)] = [(0, 0), (10e-6, 0), (20.3e-6, 0)]
        try file.write(positions.flatMap { [-$0.x, -$0.y, 0] }, to: CXIPaths.translation, shape: [3, 3])
        try file.close()
        // The grid these positions make is the object's (the solver's ObjectGrid): 2030 + 64 + 8 rows, 64 + 8 columns.
        // This object is larger, so the positions are not claimed to lie on it.
        let bytes = try ResultFile(path: path, name: "big.cxi").overview()
        let o = try header(bytes)
        #expect(o["object_step"] as? Int == 3 && o["object_full_shape"] as? [Int] == [h, w])
        let shown = try body(bytes, "object", as: Complex<Float>.self)
        #expect(shown.count == 700 * 500)
        #expect(shown[1 * 500 + 2] == object[3 * w + 6])
        #expect(!((o["parts"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "positions_px" })
        #expect(try body(bytes, "positions_m", as: Float.self) == [0, 0, 10e-6, 0, 20.3e-6, 0].map { Float($0) })
        #expect((o["stream_report"] as? [String: Any])?["frames_received"] as? Int == 3)
        #expect((o["process"] as? [String: Any])?["program"] as? String == "nanosurveyor")
        #expect((o["errors"] as? [String: Any])?["fourier"] as? [Double] == [0.5, 0.5, 0.5])
        #expect(o["kind"] as? String == "reconstruction")
    }

    @Test func positionsAreDrawnWhereTheSolverPlacedThem() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/rec.cxi"
        // Pixels of 1/8 (any unit) keep the arithmetic exact: positions 0, 10, 30 and 0, 20, 15 pixels.
        let positions: [(y: Double, x: Double)] = [(0, 0), (1.25, 2.5), (3.75, 1.875)]
        // ObjectGrid: 30 + 16 + 8 = 54 rows, 20 + 16 + 8 = 44 columns.
        let file = try HDF5File(path: path, mode: .truncate)
        try file.write([Complex<Float>](repeating: Complex(1, 0), count: 54 * 44), to: CXIPaths.image, shape: [54, 44])
        try file.write(scalar: 0.125, to: "/entry_1/image_1/ns_pixel_size")
        try file.write([Complex<Float>](repeating: Complex(1, 0), count: 16 * 16), to: CXIPaths.illumination, shape: [16, 16])
        try file.write(positions.flatMap { [-$0.x, -$0.y, 0] }, to: CXIPaths.translation, shape: [3, 3])
        try file.close()
        let px = try body(try ResultFile(path: path, name: "rec.cxi").overview(), "positions_px", as: Float.self)
        // Centre = position / pixel - minimum + margin 4 + half the frame (8).
        let expected: [Float] = [12, 12, 22, 32, 42, 27]
        #expect(zip(px, expected).allSatisfy { abs($0 - $1) < 1e-3 }, "\(px)")
    }

    @Test func hostileFilesAreRefusedByNameBeforeAnythingLargeIsRead() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try touch("text.cxi", "not HDF5 at all")
        #expect(throws: ViewerError.self) { try ResultFile(path: dir + "/text.cxi", name: "text.cxi") }
        do { _ = try ResultFile(path: dir + "/text.cxi", name: "text.cxi") } catch {
            #expect("\(error)".contains("text.cxi: not a readable HDF5 file"))
        }
        // Declared huge, stored sparse: refused from the shape alone.
        let path = dir + "/huge.cxi"
        let file = try HDF5File(path: path, mode: .truncate)
        try file.createDataset(CXIPaths.data, of: Float.self, shape: [10, 8192, 8192], chunks: [1, 64, 64])
        try file.createDataset(CXIPaths.illumination, of: Complex<Float>.self, shape: [1 << 13, 1 << 13], chunks: [64, 64])
        try file.close()
        let f = try ResultFile(path: path, name: "huge.cxi")
        #expect(throws: ViewerError.self) { try f.frame(0) }
        do { _ = try f.frame(0) } catch { #expect("\(error)".contains("over the 16777216 pixels"), "\(error)") }
        // The overview shows what it can and names what it cannot.
        let o = try header(try f.overview())
        #expect((o["problems"] as? [String])?.first?.contains("source_1/illumination: shape [8192, 8192] holds 67108864 elements") == true, "\(o)")
        #expect(o["frames"] as? Int == 10)
        #expect(throws: ViewerError.self) { try f.photons() }
    }
}
