import CXI
import Foundation
import Ingest
import Numerics
import Recon
import Simulator
import SwiftHDF5
import SwiftPNG
import Testing

func scratch(_ name: String) -> String { NSTemporaryDirectory() + "ns-cxi-\(UUID().uuidString)-\(name)" }

@Suite struct CXIFileTests {
    /// Everything written reads back identically: frames, positions,
    /// geometry, mask and ground truth.
    @Test func simulatedScanRoundTrips() throws {
        var config = smallConfig(scan: .spiral(points: 11))
        config.beamstop = Beamstop(radius: 3)
        let sim = try Simulation(config)
        let path = scratch("scan.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = SimulatedScanWriter.Options()
        options.batch = 4
        options.storeIllumination = true
        let summary = try SimulatedScanWriter.write(sim, to: path, options: options)
        #expect(summary.frames == 11 && summary.bytes == 11 * 64 * 64 * 4)

        let r = try CXIReader(path: path)
        #expect(r.frameCount == 11)
        #expect(r.dataType == .float(bits: 32))
        #expect(r.scan.energy == config.geometry.energy)
        #expect(r.scan.distance == config.geometry.distance)
        #expect(r.scan.xPixelSize == config.geometry.detectorPixelSize && r.scan.yPixelSize == r.scan.xPixelSize)
        for (p, q) in zip(r.scan.positions, sim.points) {
            #expect(p.x == q.x && p.y == q.y)
        }
        let frames = try r.readFrames(first: 0, count: 11)
        for i in 0..<11 {
            #expect(Array(frames[(i * 4096)..<((i + 1) * 4096)]) == sim.frame(i).photons.values)
            #expect(try r.truthIntensities(first: i, count: 1) == sim.frame(i).clean.values)
        }
        #expect(try r.truthObject() == sim.object)
        #expect(try r.truthProbe() == sim.probe)
        #expect(r.scan.illumination == sim.probe)
        #expect(r.scan.optics == config.zonePlate)
        let mask = try #require(r.scan.mask)
        #expect(mask.filter { $0 == PixelMask.shadowed }.count == Beamstop(radius: 3).map(frameSize: 64).values.filter { $0 < 1 }.count)
        #expect(r.exists("/entry_1/data_1/data") && r.exists("/entry_1/data_1/translation"))
        #expect(try r.read("/cxi_version", as: Int32.self) == [160])
        // CXI translations are sample motion: the negated probe positions, (x, y, z).
        let t = try r.read("/entry_1/sample_1/geometry_1/translation", as: Double.self)
        #expect(t[0] == -sim.points[0].x && t[1] == -sim.points[0].y && t[2] == 0)
    }

    @Test func rawScanWithDarksRoundTrips() throws {
        var config = smallConfig()
        var detector = DetectorModel()
        detector.channels = 8
        detector.overscan = 2
        config.detector = detector
        config.darkFrames = 3
        let sim = try Simulation(config)
        let path = scratch("raw.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try SimulatedScanWriter.write(sim, to: path)
        let r = try CXIReader(path: path)
        #expect(r.dataType == .integer(signed: false, bits: 16))
        #expect(r.scan.frameWidth == 8 * (8 + 2) && r.scan.frameHeight == 64)
        #expect(r.scan.readout == ReadoutLayout(rows: 64, columns: 64, channels: 8, overscan: 2))
        #expect(r.scan.gain == 8)
        #expect(r.scan.darkFrames == 3)
        let frame4 = try r.readFrames(first: 4, count: 1)
        let f = sim.frame(4)
        #expect(frame4 == f.raw!.map(Float.init))
        #expect(try r.readDarks(first: 0, count: 3) == (0..<3).flatMap { sim.darkFrame($0)!.map(Float.init) })
        #expect(try r.read("/entry_1/ns_truth/detector/mask", as: UInt32.self) == sim.detector!.mask)
    }

    @Test func conventionsFlipAndSwap() throws {
        let path = scratch("conv.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeForeignFile(path, translation: [1e-6, 2e-6, 0, 3e-6, 4e-6, 0])
        #expect(try CXIReader(path: path).scan.positions.map { [$0.y, $0.x] } == [[-2e-6, -1e-6], [-4e-6, -3e-6]])
        let probe = try CXIReader(path: path, convention: TranslationConvention(probePositions: true))
        #expect(probe.scan.positions.map { [$0.y, $0.x] } == [[2e-6, 1e-6], [4e-6, 3e-6]])
        let swapped = try CXIReader(path: path, convention: TranslationConvention(probePositions: true, flipX: true, swapXY: true))
        #expect(swapped.scan.positions.map { [$0.y, $0.x] } == [[1e-6, -2e-6], [3e-6, -4e-6]])
    }

    /// Another tool's file: float64 frames, (x, y, z) translations in m, a
    /// complex128 probe at source_1/illumination, no mask, no links. Written
    /// by h5py when Python has it, else by our HDF5 layer in the same layout.
    @Test func fileFromAnotherToolReads() throws {
        let path = scratch("foreign.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let script = """
            import sys, h5py, numpy as np
            with h5py.File(sys.argv[1], 'w') as f:
                f['cxi_version'] = 150
                d = f.create_dataset('entry_1/instrument_1/detector_1/data', data=np.arange(2*3*4, dtype='f8').reshape(2, 3, 4) * 1.5)
                f['entry_1/instrument_1/detector_1/distance'] = 0.5
                f['entry_1/instrument_1/detector_1/x_pixel_size'] = 7.5e-5
                f['entry_1/instrument_1/detector_1/y_pixel_size'] = 7.5e-5
                f['entry_1/instrument_1/source_1/energy'] = 1.2e-16
                f['entry_1/sample_1/geometry_1/translation'] = np.array([[1e-6, 2e-6, 0], [3e-6, 4e-6, 0]])
                f['entry_1/instrument_1/source_1/illumination'] = (np.arange(12).reshape(3, 4) * (1 - 2j)).astype('c16')
                f['entry_1/data_1/data'] = h5py.SoftLink('/entry_1/instrument_1/detector_1/data')
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, path]
        python.standardError = FileHandle.nullDevice
        var viaH5py = false
        if (try? python.run()) != nil {
            python.waitUntilExit()
            viaH5py = python.terminationStatus == 0
        }
        if !viaH5py {
            try writeForeignFile(path, translation: [1e-6, 2e-6, 0, 3e-6, 4e-6, 0],
                                 illumination: (0..<12).map { Complex(Float($0), -2 * Float($0)) })
        }
        let r = try CXIReader(path: path)
        #expect(r.frameCount == 2 && r.scan.frameHeight == 3 && r.scan.frameWidth == 4)
        #expect(try r.readFrames(first: 0, count: 2) == (0..<24).map { Float($0) * 1.5 })
        #expect(r.scan.energy == 1.2e-16 && r.scan.distance == 0.5)
        #expect(r.scan.positions.map { [$0.y, $0.x] } == [[-2e-6, -1e-6], [-4e-6, -3e-6]])
        #expect(r.scan.mask == nil)
        #expect(r.scan.illumination?.values == (0..<12).map { Complex(Float($0), -2 * Float($0)) })
        #expect(r.scan.illumination?.shape == [3, 4])
    }

    enum Damage: String, CaseIterable, Sendable {
        case notHDF5, noData, noTranslation, frameCountMismatch, nonFiniteTranslation, energyInEV,
             noDistance, maskShape, flatData, opticsInMicrons, opticsWithoutDefocus
    }

    @Test(arguments: Damage.allCases)
    func malformedFilesGetClearErrors(_ damage: Damage) throws {
        let path = scratch("bad.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var expected: (dataset: String, problem: String)
        switch damage {
        case .notHDF5:
            try "frames".write(toFile: path, atomically: true, encoding: .utf8)
            expected = ("/", "not an HDF5 file")
        case .noData:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], skip: ["data"])
            expected = ("/entry_1/data_1/data or /entry_1/instrument_1/detector_1/data", "missing")
        case .noTranslation:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], skip: ["translation"])
            expected = ("translation", "missing")
        case .frameCountMismatch:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0, 2e-7, 0, 0])
            expected = ("/entry_1/sample_1/geometry_1/translation", "3 positions for 2 frames")
        case .nonFiniteTranslation:
            try writeForeignFile(path, translation: [0, 0, 0, .nan, 0, 0])
            expected = ("/entry_1/sample_1/geometry_1/translation", "position 1 is not finite")
        case .energyInEV:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], energy: 800)
            expected = ("/entry_1/instrument_1/source_1/energy", "is it in eV?")
        case .noDistance:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], skip: ["distance"])
            expected = ("/entry_1/instrument_1/detector_1/distance", "missing")
        case .maskShape:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], mask: [UInt32](repeating: 0, count: 6))
            expected = ("/entry_1/instrument_1/detector_1/mask", "does not match the frames' 3x4")
        case .flatData:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], flat: true)
            expected = ("/entry_1/instrument_1/detector_1/data", "is not a non-empty stack of frames")
        case .opticsInMicrons, .opticsWithoutDefocus:
            try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0])
            let f = try HDF5File(path: path, mode: .readWrite)
            var values = [("diameter", damage == .opticsInMicrons ? 240 : 240e-6), ("outer_zone_width", 40e-9), ("central_stop", 100e-6)]
            if damage == .opticsInMicrons { values.append(("defocus", 20e-6)) }
            for (name, value) in values {
                try f.write(scalar: value, to: "/entry_1/instrument_1/ns_optics/" + name)
            }
            try f.close()
            expected = damage == .opticsInMicrons ? ("/entry_1/instrument_1/ns_optics", "diameter 240 m is outside 1e-05 to 0.01 m (is it in µm or nm?")
                : ("/entry_1/instrument_1/ns_optics/defocus", "missing")
        }
        let error = try #require(throws: CXIError.self) { try CXIReader(path: path) }
        #expect(error.file == path)
        #expect(error.dataset.contains(expected.dataset), "\(error)")
        #expect(error.problem.contains(expected.problem), "\(error)")
    }

    /// An instrument's file records its optics; a simulation can leave them out.
    @Test func opticsAreRecordedUnlessAskedNotTo() throws {
        let sim = try Simulation(smallConfig(scan: .raster(rows: 1, columns: 2)))
        let path = scratch("no-optics.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = SimulatedScanWriter.Options()
        options.recordOptics = false
        _ = try SimulatedScanWriter.write(sim, to: path, options: options)
        let r = try CXIReader(path: path)
        #expect(r.scan.optics == nil && !r.exists("/entry_1/instrument_1/ns_optics"))
    }

    @Test func nonFiniteFrameIsReportedWhenRead() throws {
        let path = scratch("nan.cxi")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeForeignFile(path, translation: [0, 0, 0, 1e-7, 0, 0], nanAt: 13)
        let r = try CXIReader(path: path)
        #expect(try r.readFrames(first: 0, count: 1).count == 12)
        let error = try #require(throws: CXIError.self) { try r.readFrames(first: 0, count: 2) }
        #expect(error.problem == "frame 1 has a non-finite value at pixel 1")
        #expect(throws: CXIError.self) { try r.readFrames(first: 1, count: 2) }
    }
}

/// A minimal CXI file as other tools write it: two 3x4 float64 frames.
func writeForeignFile(_ path: String, translation: [Double], energy: Double = 1.2e-16, skip: Set<String> = [],
                      mask: [UInt32]? = nil, flat: Bool = false, nanAt: Int? = nil,
                      illumination: [Complex<Float>]? = nil) throws {
    let f = try HDF5File(path: path, mode: .truncate)
    var frames = (0..<24).map { Double($0) * 1.5 }
    if let nanAt { frames[nanAt] = .nan }
    if !skip.contains("data") {
        try f.write(frames, to: "/entry_1/instrument_1/detector_1/data", shape: flat ? [24] : [2, 3, 4])
    }
    if !skip.contains("distance") { try f.write(scalar: 0.5, to: "/entry_1/instrument_1/detector_1/distance") }
    try f.write(scalar: 7.5e-5, to: "/entry_1/instrument_1/detector_1/x_pixel_size")
    try f.write(scalar: energy, to: "/entry_1/instrument_1/source_1/energy")
    if !skip.contains("translation") {
        try f.write(translation, to: "/entry_1/sample_1/geometry_1/translation", shape: [translation.count / 3, 3])
    }
    if let mask { try f.write(mask, to: "/entry_1/instrument_1/detector_1/mask", shape: [2, 3]) }
    if let illumination { try f.write(illumination, to: "/entry_1/instrument_1/source_1/illumination", shape: [3, 4]) }
    try f.close()
}

@Suite struct UserSampleImageTests {
    /// A user's image becomes the thickness map, scaled to the requested
    /// thickness: black = 0, white = the full thickness.
    @Test(arguments: ["png", "h5", "tif", "tiff"])
    func imageBecomesTheThicknessMap(kind: String) throws {
        let path = scratch("sample.\(kind)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (h, w) = (40, 50)
        let values = (0..<(h * w)).map { Float(($0 % w) * 5 % 256) }
        if kind == "png" {
            try SwiftPNG.PNGImage.write(path, width: w, height: h, pixels: values.map { UInt8($0) }, rgb: false)
        } else if kind == "tif" {
            // 16-bit, as SEMs write: the full range must survive, not just 8 bits of it.
            try Self.tiff(width: w, height: h, bits: 16, samples: 1, bigEndian: false,
                          values: values.map { UInt32($0) * 257 }).write(to: URL(fileURLWithPath: path))
        } else if kind == "tiff" {
            // 8-bit RGB, big-endian: grey pixels (R = G = B) read back as their grey value.
            try Self.tiff(width: w, height: h, bits: 8, samples: 3, bigEndian: true,
                          values: values.flatMap { [UInt32($0), UInt32($0), UInt32($0)] }).write(to: URL(fileURLWithPath: path))
        } else {
            let f = try HDF5File(path: path, mode: .truncate)
            try f.write(values, to: "/image", shape: [h, w])
            try f.close()
        }
        let image = try ImageInput.read(path)
        #expect(image.shape == [h, w])
        let scale: Float = kind == "tif" ? 257 : kind == "png" ? 1 / 255 : 1  // PNG reads as 0...1
        #expect(zip(image.values, values).allSatisfy { abs($0 - $1 * scale) <= 1e-3 * max(1, $1 * scale) }, "\(image.values.prefix(8))")
        let sim = try Simulation(smallConfig(), thickness: image)
        #expect(abs(Double(sim.thickness.values.max()!) - 100e-9) < 1e-12)
        #expect(sim.thickness.values.min()! == 0)
        #expect(sim.thickness[0, 0] == 0)
        let missing = try #require(throws: CXIError.self) { try ImageInput.read(path + ".absent.\(kind)") }
        #expect(missing.file.hasSuffix(".absent.\(kind)"))
    }

    @Test func aDamagedTIFFIsRefusedNamingTheFile() throws {
        let path = scratch("damaged.tif")
        defer { try? FileManager.default.removeItem(atPath: path) }
        var bytes = Self.tiff(width: 8, height: 8, bits: 16, samples: 1, bigEndian: false, values: Array(repeating: 7, count: 64))
        bytes = bytes.prefix(30)  // the IFD cut short
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: CXIError.self) { try ImageInput.read(path) }
        #expect(error.file == path && error.dataset == "TIFF" && !error.problem.isEmpty, "\(error)")
        try Data("not a tiff at all".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: CXIError.self) { try ImageInput.read(path) }
        // A sample count the row buffers would be sized from is checked first.
        try Self.tiff(width: 2, height: 2, bits: 8, samples: 300, bigEndian: false, values: Array(repeating: 1, count: 1200))
            .write(to: URL(fileURLWithPath: path))
        let many = try #require(throws: CXIError.self) { try ImageInput.read(path) }
        #expect(many.problem.contains("300 samples per pixel"), "\(many)")
    }

    /// A minimal baseline TIFF (one uncompressed strip), written byte by
    /// byte so the reader is checked against the format, not against itself.
    static func tiff(width: Int, height: Int, bits: Int, samples: Int, bigEndian: Bool, values: [UInt32]) -> Data {
        var out = Data()
        func u16(_ v: Int) { let x = UInt16(v); out.append(contentsOf: bigEndian ? [UInt8(x >> 8), UInt8(x & 0xff)] : [UInt8(x & 0xff), UInt8(x >> 8)]) }
        func u32(_ v: Int) { let x = UInt32(v); let le = [UInt8(x & 0xff), UInt8(x >> 8 & 0xff), UInt8(x >> 16 & 0xff), UInt8(x >> 24)]; out.append(contentsOf: bigEndian ? le.reversed() : le) }
        let entries: [(tag: Int, type: Int, value: Int)] = [
            (256, 4, width), (257, 4, height), (258, 3, bits), (259, 3, 1), (262, 3, samples == 3 ? 2 : 1), (273, 4, 0),
            (277, 3, samples), (278, 4, height), (279, 4, width * height * samples * bits / 8), (284, 3, 1),
        ]
        let dataOffset = 8 + 2 + entries.count * 12 + 4
        out.append(contentsOf: bigEndian ? Array("MM".utf8) : Array("II".utf8))
        u16(42)
        u32(8)
        u16(entries.count)
        for e in entries {
            u16(e.tag); u16(e.type); u32(1)
            let value = e.tag == 273 ? dataOffset : e.value
            if e.type == 3 { u16(value); u16(0) } else { u32(value) }
        }
        u32(0)
        for v in values {
            switch bits {
            case 8: out.append(UInt8(v))
            case 16: u16(Int(v))
            default: u32(Int(v))
            }
        }
        return out
    }
}
