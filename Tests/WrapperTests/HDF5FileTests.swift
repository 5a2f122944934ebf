import Foundation
import Numerics
@testable import SwiftHDF5
import Testing

func temporaryPath(_ name: String) -> String {
    NSTemporaryDirectory() + "ns-test-\(UUID().uuidString)-\(name)"
}

@Suite struct HDF5FileTests {
    @Test func everyElementTypeRoundTrips() throws {
        let path = temporaryPath("types.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let f = try HDF5File(path: path, mode: .createNew)
            try f.write([1.5, -2.25] as [Float], to: "f32")
            try f.write([1e300, -1e-300] as [Double], to: "f64")
            try f.write([0, 65535] as [UInt16], to: "u16")
            try f.write([0, 4_000_000_000] as [UInt32], to: "u32")
            try f.write([-5, Int64.max] as [Int64], to: "i64")
            try f.write([Complex<Float>(1, -1), Complex(0.5, 2)], to: "c64", shape: [2, 1])
            try f.write(string: "Fresnel zone plate ✓", to: "text")
            try f.write(scalar: 160 as Int32, to: "cxi_version")
            try f.write([] as [Int64], to: "empty", shape: [0])
        }
        let f = try HDF5File(path: path, mode: .readOnly)
        #expect(try f.read("f32", as: Float.self) == [1.5, -2.25])
        #expect(try f.read("f64", as: Double.self) == [1e300, -1e-300])
        #expect(try f.read("u16", as: UInt16.self) == [0, 65535])
        #expect(try f.read("u32", as: UInt32.self) == [0, 4_000_000_000])
        #expect(try f.read("i64", as: Int64.self) == [-5, Int64.max])
        #expect(try f.read("c64", as: Complex<Float>.self) == [Complex(1, -1), Complex(0.5, 2)])
        #expect(try f.readString("text") == "Fresnel zone plate ✓")
        #expect(try f.readScalar("cxi_version", as: Int32.self) == 160)
        #expect(try f.openDataset("c64").shape == [2, 1])
        #expect(try f.openDataset("c64").storedType == .complex(bits: 64))
        #expect(try f.openDataset("u16").storedType == .integer(signed: false, bits: 16))
        #expect(try f.openDataset("cxi_version").shape == [])
        #expect(try f.read("empty", as: Int64.self) == [])
        #expect(try f.openDataset("empty").shape == [0])
        // Stored uint16 reads as Float through HDF5's conversion.
        #expect(try f.read("u16", as: Float.self) == [0, 65535])
        #expect(try f.children().sorted() == ["c64", "cxi_version", "empty", "f32", "f64", "i64", "text", "u16", "u32"])
    }

    @Test func hyperslabsExtendibleDatasetsAttributesAndLinks() throws {
        let path = temporaryPath("slabs.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try HDF5File(path: path, mode: .truncate)
        let frames = try f.createDataset("/entry_1/data_1/data", of: Float.self, shape: [0, 3, 4],
                                         maxShape: [nil, 3, 4], chunks: [1, 3, 4])
        for n in 0..<5 {
            try frames.resize([n + 1, 3, 4])
            try frames.write((0..<12).map { Float(n * 100 + $0) }, offset: [n, 0, 0], count: [1, 3, 4])
        }
        #expect(try frames.shape == [5, 3, 4])
        let block = try frames.read(Float.self, offset: [2, 1, 1], count: [2, 2, 3])
        #expect(block == [205, 206, 207, 209, 210, 211, 305, 306, 307, 309, 310, 311])
        // A zero-sized selection is allowed (a rank with nothing to write).
        try frames.write([Float](), offset: [0, 0, 0], count: [0, 3, 4])

        try frames.setAttribute("axes", string: "translation:y:x")
        try frames.setAttribute("origin", [1.0, 2.0] as [Double])
        try frames.setAttribute("origin", [3.0, 4.0] as [Double])  // replaced, not duplicated
        try frames.setAttribute("count", scalar: 5 as Int64)
        #expect(try frames.stringAttribute("axes") == "translation:y:x")
        #expect(try frames.attribute("origin", as: Double.self) == [3.0, 4.0])
        #expect(try frames.attribute("count", as: Int64.self) == [5])
        #expect(frames.hasAttribute("missing") == false)

        try f.softLink("/entry_1/instrument_1/detector_1/data", to: "/entry_1/data_1/data")
        #expect(try f.softLinkTarget("/entry_1/instrument_1/detector_1/data") == "/entry_1/data_1/data")
        #expect(try f.softLinkTarget("/entry_1/data_1/data") == nil)
        #expect(try f.openDataset("/entry_1/instrument_1/detector_1/data").shape == [5, 3, 4])
        let group = try f.openGroup("entry_1")
        #expect(group.exists("data_1/data"))
        #expect(!group.exists("data_1/nothing"))
        #expect(!f.exists("/no/such/path"))
        #expect(try group.openDataset("data_1/data").name == "/entry_1/data_1/data")
        try f.close()
        #expect(throws: HDF5Error.self) { try frames.read(Float.self) }
    }

    /// A file's strings are read into one string's buffer: anything else (many values,
    /// a huge length) is refused before the read, never written past the buffer.
    @Test func aStringIsReadOnlyWhenItIsOneOfSaneLength() throws {
        let path = temporaryPath("strings.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try HDF5File(path: path, mode: .truncate)
        _ = try file.createDataset("three", typeID: try HDF5String.fixedType(for: "abcdefgh", path: path), shape: [3], maxShape: nil, chunks: nil)
        try file.write(string: String(repeating: "a", count: HDF5String.maxBytes + 1), to: "long")
        try file.write(string: "fine", to: "short")
        #expect(try file.readString("short") == "fine")
        do { _ = try file.readString("three"); Issue.record("three strings read as one") } catch {
            #expect("\(error)".contains("holds 3 values where one string is expected"), "\(error)")
        }
        do { _ = try file.readString("long"); Issue.record("a 16 MiB string read") } catch {
            #expect("\(error)".contains("over the 16777216 read"), "\(error)")
        }
        try file.close()
    }

    @Test func missingFileNamesThePath() throws {
        let path = temporaryPath("absent.h5")
        let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path, mode: .readOnly) }
        #expect(error.path == path)
        #expect(error.reason == "no such file")
    }

    @Test func nonHDF5FileIsRecognised() throws {
        let path = temporaryPath("not.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "just text".write(toFile: path, atomically: true, encoding: .utf8)
        let error = try #require(throws: HDF5Error.self) { try HDF5File(path: path, mode: .readOnly) }
        #expect(error.description.contains("not an HDF5 file"))
        #expect(error.description.contains(path))
    }

    @Test func libraryErrorsBecomeMessages() throws {
        let path = temporaryPath("errors.h5")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try HDF5File(path: path, mode: .createNew)
        #expect(throws: HDF5Error.self) { try HDF5File(path: path, mode: .createNew) }
        try f.write([1, 2, 3] as [Float], to: "x")
        let exists = try #require(throws: HDF5Error.self) { try f.write([1] as [Float], to: "x") }
        #expect(exists.call == "H5Dcreate2")
        #expect(exists.description.contains("already exists"))
        let missing = try #require(throws: HDF5Error.self) { try f.openDataset("/entry_1/nothing") }
        #expect(missing.description.contains("/entry_1/nothing"))
        let outside = try #require(throws: HDF5Error.self) {
            try f.openDataset("x").read(Float.self, offset: [2], count: [2])
        }
        #expect(outside.reason.contains("outside shape [3]"))
        let size = try #require(throws: HDF5Error.self) { try f.openDataset("x").write([1, 2] as [Float]) }
        #expect(size.reason.contains("2 values for a dataset of 3"))
        #expect(throws: HDF5Error.self) { try f.readString("x") }
        #expect(throws: HDF5Error.self) { try f.openDataset("x").stringAttribute("nope") }
    }

    @Test func concurrentUseIsSerialisedSafely() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    let path = temporaryPath("thread\(t).h5")
                    defer { try? FileManager.default.removeItem(atPath: path) }
                    let f = try HDF5File(path: path, mode: .truncate)
                    for i in 0..<20 { try f.write([Float(i + t)], to: "d\(i)") }
                    for i in 0..<20 { #expect(try f.read("d\(i)", as: Float.self) == [Float(i + t)]) }
                }
            }
            try await group.waitForAll()
        }
    }
}
