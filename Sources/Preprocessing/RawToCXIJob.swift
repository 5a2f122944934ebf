import CXI
import Foundation
import Ingest
import Numerics
import Recon
import SafeOutput
import ReconMPI
import SwiftMPI

/// The offline path from a raw fast-CCD scan to a clean CXI scan on a group
/// of ranks: dark statistics merged over the ranks, the diffraction centre
/// from bright frames, every frame cleaned by the rank that owns it and
/// written collectively, then the scan images and a probe estimate.
public enum RawToCXIJob {
    public struct Options: Sendable {
        public var preprocess = PreprocessOptions()
        /// The probe estimate's source, and the defocus in m for the mean pattern's phase (0: flat).
        public var firstProbe = FirstProbeSource.optics
        public var probeDefocus = 0.0
        /// A measured beamstop transmission map (PNG, TIFF, or HDF5 as FILE:/dataset) of the detector image's size.
        public var beamstopMap: String? = nil
        /// Frames cleaned and written per collective round.
        public var batch = 8
        public var command = ""
        public var version = ""
        public init() {}
    }

    public struct Summary: Codable, Sendable {
        public var frames: Int
        public var darkFrames: Int
        public var outputSize: Int
        public var centre: [Double]
        public var maskedPixels: Int
        public var nonFiniteValues: Int
        /// Frames whose readout spectrum was searched for interference lines
        /// (the darks' lines did not explain their overscan).
        public var interferenceSearches: Int
        public var seconds: Double
        public var warnings: [String]
    }

    /// The file's mask as image pixels: given per raw pixel (overscan
    /// included, as raw files are written) or per image pixel.
    public static func imageMask(_ mask: [UInt32]?, layout: ReadoutLayout, file: String) throws -> [UInt32]? {
        guard let mask else { return nil }
        if mask.count == layout.rows * layout.columns { return mask }
        guard mask.count == layout.rawPixels else {
            throw PreprocessError.shape("\(file): the mask has \(mask.count) pixels; the detector is \(layout.rows)x\(layout.columns) (\(layout.rows)x\(layout.rawColumns) raw)")
        }
        return (0..<layout.rows).flatMap { y in (0..<layout.columns).map { mask[y * layout.rawColumns + layout.rawColumn(ofImageColumn: $0)] } }
    }

    public static func run(input: String, output: String, comm: Communicator, options: Options,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let start = Date()
        var warnings: [String] = []
        var inputs = [(role: "the raw scan", path: input)]
        if let map = options.beamstopMap {
            inputs.append((role: "the beamstop map", path: map.range(of: ":/", options: .backwards).map { String(map[..<$0.lowerBound]) } ?? map))
        }
        // Before any work: an output that is an input would be destroyed.
        try FileIdentity.refuse(output: output, role: "the output", sameAs: inputs)
        let reader = try CXIReader(path: input)
        let scan = reader.scan
        guard let layout = scan.readout else {
            throw PreprocessError.input("\(input): no \(CXIPaths.readout) group: the frames are not raw fast-CCD frames")
        }
        guard scan.frames > 0 else { throw PreprocessError.input("\(input): the scan has no frames") }

        let fileMask = try imageMask(scan.mask, layout: layout, file: input)
        let setup = CleanerSetup(layout: layout, gain: scan.gain, fileMask: fileMask, options: options.preprocess)
        // Dark statistics: each rank its block of darks, merged.
        var nonFiniteDarks = 0
        let myDarks = SimulatedScanWriter.block(frames: scan.darkFrames, rank: comm.rank, size: comm.size)
        var k = 0
        while k < myDarks.count {
            let count = min(options.batch, myDarks.count - k)
            var values = try reader.readDarks(first: myDarks.first + k, count: count)
            for i in values.indices where !values[i].isFinite {
                values[i] = 0
                nonFiniteDarks += 1
            }
            for f in 0..<count { try setup.addDark(Array(values[(f * layout.rawPixels)..<((f + 1) * layout.rawPixels)])) }
            k += count
        }
        try setup.mergeDarks(over: comm)
        if scan.darkFrames > 0 {
            nonFiniteDarks = try comm.allreduce(nonFiniteDarks, op: .sum)
            if nonFiniteDarks > 0 { warnings.append("\(nonFiniteDarks) non-finite values in the dark frames were read as 0") }
            if scan.darkFrames < 2 {
                warnings.append("only one dark frame: dark mean subtracted, but no bad-pixel mask from the darks")
            }
        } else {
            warnings.append("no dark frames: dark subtraction and the dark-frame mask skipped; offsets come from the overscan alone")
        }
        if layout.overscan == 0 && options.preprocess.overscanOrder > 0 {
            warnings.append("no overscan columns: readout offsets are not fitted")
        }
        let beamstop = try beamstopMap(options.beamstopMap, layout: layout)
        let mine = SimulatedScanWriter.block(frames: scan.frames, rank: comm.rank, size: comm.size)

        // The centre: given, or the symmetric centre of mass of the scan's
        // first frames (split over the ranks, so it does not depend on the
        // rank count), cleaned without crop or beamstop.
        if options.preprocess.centre == nil {
            let first = SimulatedScanWriter.block(frames: min(8, scan.frames), rank: comm.rank, size: comm.size)
            if first.count > 0 {
                let values = try reader.readFrames(first: first.first, count: first.count, allowNonFinite: true)
                for f in 0..<first.count { try setup.addCentring(raw: Array(values[(f * layout.rawPixels)..<((f + 1) * layout.rawPixels)])) }
            }
        }
        guard let centre = try setup.centre(over: comm) else {
            throw PreprocessError.input("\(input): the first frames hold no photons after cleaning (all dark?): give --centre y,x")
        }
        let cleaner = try setup.cleaner(centre: centre, beamstopMap: beamstop)
        let m = cleaner.outputSize
        let writer = try openCleanScan(output, like: scan, cleaner: cleaner, comm: comm, options: options, inputs: inputs)
        var totals = CleanScanTotals(frames: scan.frames, pixels: m * m)
        let largest = (0..<comm.size).map { SimulatedScanWriter.block(frames: scan.frames, rank: $0, size: comm.size).count }.max() ?? 0
        let rounds = (largest + options.batch - 1) / options.batch
        for round in 0..<rounds {
            let first = mine.first + round * options.batch
            let count = max(0, min(options.batch, mine.first + mine.count - first))
            var clean: [Float] = []
            clean.reserveCapacity(count * m * m)
            if count > 0 {
                let values = try reader.readFrames(first: first, count: count, allowNonFinite: true)
                for f in 0..<count {
                    let frame = try cleaner.clean(raw: Array(values[(f * layout.rawPixels)..<((f + 1) * layout.rawPixels)]))
                    totals.add(frame, index: first + f)
                    clean += frame.photons
                }
            }
            // Collective: ranks without frames this round write nothing, together.
            try writer.writeFrames(clean, first: first, count: count)
            progress?(min(scan.frames, (round + 1) * options.batch * comm.size), scan.frames)
        }
        let (totalNonFinite, more) = try totals.finish(writer: writer, reader: reader, cleaner: cleaner, centre: centre,
                                                      firstProbe: options.firstProbe, probeDefocus: options.probeDefocus, over: comm)
        warnings += more
        let searched = try comm.allreduce(cleaner.searchedFrames, op: .sum)
        return Summary(frames: scan.frames, darkFrames: scan.darkFrames, outputSize: m, centre: [centre.y, centre.x],
                       maskedPixels: cleaner.outputMask.filter { $0 != 0 }.count, nonFiniteValues: totalNonFinite,
                       interferenceSearches: searched, seconds: Date().timeIntervalSince(start), warnings: warnings)
    }

    /// A measured beamstop transmission map of the detector image's size (nil: none).
    public static func beamstopMap(_ spec: String?, layout: ReadoutLayout) throws -> [Float]? {
        guard let spec else { return nil }
        let map = try ImageInput.read(spec)
        guard map.height == layout.rows, map.width == layout.columns else {
            throw PreprocessError.shape("beamstop map \(spec) is \(map.height)x\(map.width); the detector image is \(layout.rows)x\(layout.columns)")
        }
        return map.values
    }

    /// The clean scan's file, made collectively: the raw scan's geometry and
    /// positions, the cleaner's frame size, pitch and mask.
    public static func openCleanScan(_ path: String, like scan: CXIScan, cleaner: FrameCleaner, comm: Communicator,
                                     options: Options, inputs: [(role: String, path: String)] = []) throws -> CXIWriter {
        let m = cleaner.outputSize
        let out = CXIScan(energy: scan.energy, distance: scan.distance, xPixelSize: cleaner.outputPixelSize(scan.xPixelSize),
                          yPixelSize: cleaner.outputPixelSize(scan.yPixelSize), frameHeight: m, frameWidth: m,
                          positions: scan.positions, mask: cleaner.outputMask, optics: scan.optics)
        return try CXIWriter(path: path, scan: out, frameType: .float32, comm: comm, version: options.version, command: options.command,
                             inputs: inputs)
    }
}

/// What the scan-wide products need from each clean frame (its
/// transmission, centre of mass, photons for the mean pattern), kept by the
/// rank that cleaned it and summed over the ranks at the end.
public struct CleanScanTotals {
    var transmission: [Double], comY: [Double], comX: [Double]
    var meanFrame: [Double]
    var nonFinite = 0

    public init(frames: Int, pixels: Int) {
        transmission = [Double](repeating: 0, count: frames)
        comY = transmission
        comX = transmission
        meanFrame = [Double](repeating: 0, count: pixels)
    }

    public mutating func add(_ frame: CleanFrame, index: Int) {
        transmission[index] = frame.total
        comY[index] = frame.centreOfMass.y
        comX[index] = frame.centreOfMass.x
        nonFinite += frame.nonFinite
        for i in meanFrame.indices { meanFrame[i] += Double(frame.photons[i]) }
    }

    /// Sums over the ranks (collective), then writes the STXM and DPC
    /// images, the raw file's truth and the probe estimate (from the
    /// recorded optics or the mean pattern), and closes the file. The non-finite input values counted,
    /// and warnings.
    public mutating func finish(writer: CXIWriter, reader: CXIReader, cleaner: FrameCleaner, centre: (y: Double, x: Double),
                                firstProbe: FirstProbeSource, probeDefocus: Double, over comm: Collective) throws -> (nonFinite: Int, warnings: [String]) {
        var warnings: [String] = []
        // Each frame's values live on one rank: a sum assembles them everywhere.
        try transmission.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try comY.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try comX.withUnsafeMutableBufferPointer { try comm.sum($0) }
        try meanFrame.withUnsafeMutableBufferPointer { try comm.sum($0) }
        var counted = [Double(nonFinite)]
        try counted.withUnsafeMutableBufferPointer { try comm.sum($0) }
        let totalNonFinite = Int(counted[0])
        if totalNonFinite > 0 { warnings.append("\(totalNonFinite) non-finite input values were read as 0") }
        let scan = reader.scan, m = cleaner.outputSize
        let images = ScanImages(positions: scan.positions, transmission: transmission,
                                centreOfMass: zip(comY, comX).map { ($0, $1) }, centre: centre)
        try writer.writeScanImages(images)
        try writer.copyTruth(from: reader)
        let geometry = Geometry(energy: scan.energy, distance: scan.distance, detectorPixelSize: cleaner.outputPixelSize(scan.xPixelSize),
                                frameSize: m)
        let mean = Array2D(height: m, width: m, values: meanFrame.map { Float($0 / Double(scan.frames)) })
        if let first = try? FirstProbe.make(source: firstProbe, optics: scan.optics, meanIntensity: mean, geometry: geometry,
                                            defocus: probeDefocus) {
            if let w = first.warning { warnings.append("probe estimate: " + w) }
            try writer.writeIllumination(first.probe)
        } else {
            warnings.append("the clean frames hold no photons: no probe estimate written")
        }
        try writer.close()
        return (totalNonFinite, warnings)
    }
}
