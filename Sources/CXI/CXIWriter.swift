import Foundation
import Numerics
import Ingest
import Recon
import SafeOutput
import Simulator
import SwiftHDF5
import SwiftMPI

/// What a scan file describes, in SI units.
public struct CXIScan: Sendable {
    /// Photon energy in J.
    public var energy: Double
    /// Sample-detector distance in m.
    public var distance: Double
    /// Detector pixel pitch in m.
    public var xPixelSize: Double
    public var yPixelSize: Double
    /// Shape of each stored frame (raw frames include overscan columns).
    public var frameHeight: Int
    public var frameWidth: Int
    /// Probe positions on the object, (y, x) in m, one per frame.
    public var positions: [(y: Double, x: Double)]
    /// CXI bit mask per stored pixel (0 = good), if known.
    public var mask: [UInt32]?
    /// An illumination (probe) estimate, if one should be offered to readers.
    public var illumination: Array2D<Complex<Float>>?
    /// Raw fast-CCD frames: the readout layout and gain preprocessing needs.
    public var readout: ReadoutLayout?
    public var gain: Double?
    public var darkFrames: Int
    /// The zone plate and defocus that made the illumination, when known.
    public var optics: ZonePlate?

    public init(energy: Double, distance: Double, xPixelSize: Double, yPixelSize: Double,
                frameHeight: Int, frameWidth: Int, positions: [(y: Double, x: Double)],
                mask: [UInt32]? = nil, illumination: Array2D<Complex<Float>>? = nil,
                readout: ReadoutLayout? = nil, gain: Double? = nil, darkFrames: Int = 0, optics: ZonePlate? = nil) {
        self.energy = energy
        self.distance = distance
        self.xPixelSize = xPixelSize
        self.yPixelSize = yPixelSize
        self.frameHeight = frameHeight
        self.frameWidth = frameWidth
        self.positions = positions
        self.mask = mask
        self.illumination = illumination
        self.readout = readout
        self.gain = gain
        self.darkFrames = darkFrames
        self.optics = optics
    }

    public var frames: Int { positions.count }
}

/// Writes one CXI file, serially or collectively from every rank of `comm`.
///
/// With a communicator every rank makes every call (HDF5 metadata is
/// collective); frame writes take each rank's own block, possibly empty.
/// The file is written beside `path` and moved there by `close`, so until
/// then whatever was at `path` stays as it was.
public final class CXIWriter {
    public enum FrameType: Sendable { case float32, uint16 }

    public let path: String
    public let scan: CXIScan
    private let file: HDF5File
    private let data: HDF5Dataset
    private var dark: HDF5Dataset?
    private var truthIntensities: HDF5Dataset?
    private let pending: PendingFile
    private let comm: Communicator?
    private var finished = false

    /// `inputs` are files the run reads: `path` must be none of them.
    public init(path: String, scan: CXIScan, frameType: FrameType, comm: Communicator? = nil,
                program: String = "nanosurveyor", version: String = "", command: String = "",
                inputs: [(role: String, path: String)] = []) throws {
        self.path = path
        self.scan = scan
        self.comm = comm
        let (n, h, w) = (scan.frames, scan.frameHeight, scan.frameWidth)
        let bytesPerValue = frameType == .uint16 ? 2.0 : 4.0
        let size = Double(n + scan.darkFrames) * Double(h * w) * bytesPerValue + Double(n * 24 + h * w * 4)
        pending = try CollectiveOutput.begin(path, comm: comm, inputs: inputs, size: size)
        file = try HDF5File(path: pending.temporary, mode: .truncate, comm: comm)
        try file.write(scalar: Int32(160), to: CXIPaths.version)
        let entry = try file.createGroup(CXIPaths.entry)
        try entry.write(string: ISO8601DateFormatter().string(from: Date()), to: "start_time")

        try file.write(scalar: scan.energy, to: CXIPaths.energy)
        try file.write(scalar: PhysicalConstants.wavelength(energy: scan.energy), to: CXIPaths.wavelength)
        try file.write(scalar: scan.distance, to: CXIPaths.distance)
        try file.write(scalar: scan.xPixelSize, to: CXIPaths.xPixelSize)
        try file.write(scalar: scan.yPixelSize, to: CXIPaths.yPixelSize)
        let imageWidth = scan.readout.map { $0.columns } ?? w
        try file.write([-Double(imageWidth) / 2 * scan.xPixelSize, -Double(h) / 2 * scan.yPixelSize, scan.distance],
                       to: CXIPaths.cornerPosition)

        let chunk = [1, h, w]
        switch frameType {
        case .float32:
            data = try file.createDataset(CXIPaths.data, of: Float.self, shape: [n, h, w], chunks: chunk)
        case .uint16:
            data = try file.createDataset(CXIPaths.data, of: UInt16.self, shape: [n, h, w], chunks: chunk)
        }
        try data.setAttribute("axes", string: "translation:y:x")
        if scan.darkFrames > 0 {
            dark = try file.createDataset(CXIPaths.dark, of: UInt16.self, shape: [scan.darkFrames, h, w], chunks: chunk)
        }
        try file.write(scan.mask ?? [UInt32](repeating: 0, count: h * w), to: CXIPaths.mask, shape: [h, w])

        // CXI translations are the sample's motion, (x, y, z): the opposite of the probe's position on it.
        let translation: [Double] = scan.positions.flatMap { [-$0.x, -$0.y, 0] }
        try file.write(translation, to: CXIPaths.translation, shape: [n, 3])
        try file.softLink(CXIPaths.dataLink, to: CXIPaths.data)
        try file.softLink(CXIPaths.translationLink, to: CXIPaths.translation)

        if let probe = scan.illumination {
            try file.write(probe.values, to: CXIPaths.illumination, shape: probe.shape)
        }
        if let readout = scan.readout {
            let group = try file.createGroup(CXIPaths.readout)
            try group.write(scalar: Int64(readout.channels), to: "channels")
            try group.write(scalar: Int64(readout.overscan), to: "overscan_columns")
            try group.write(scalar: Int64(readout.columns), to: "image_columns")
            if let gain = scan.gain {
                let g = try group.write(scalar: gain, to: "gain")
                try g.setAttribute("units", string: "ADU per photon")
            }
        }
        if let optics = scan.optics { try CXIOptics.write(optics, to: file) }
        let process = try file.createGroup("/entry_1/process_1")
        try process.write(string: program, to: "program")
        try process.write(string: version, to: "version")
        try process.write(string: command, to: "command")
        try process.write(string: ISO8601DateFormatter().string(from: Date()), to: "date")
    }

    /// Writes frames [first, first + count) of the scan (row-major, count x H x W values).
    public func writeFrames<T: HDF5Element>(_ values: [T], first: Int, count: Int) throws {
        try data.write(values, offset: [first, 0, 0], count: [count, scan.frameHeight, scan.frameWidth])
    }

    /// One frame, or one dark frame, by one rank alone (an independent write:
    /// frames arriving live land on whichever rank was dealt them).
    public func writeFrame<T: HDF5Element>(_ values: [T], index: Int, dark isDark: Bool = false) throws {
        let target: HDF5Dataset
        if isDark {
            guard let dark else {
                throw CXIError(file: path, dataset: CXIPaths.dark, problem: "the scan was declared with no dark frames")
            }
            target = dark
        } else {
            target = data
        }
        try target.write(values, offset: [index, 0, 0], count: [1, scan.frameHeight, scan.frameWidth], collective: false)
    }

    /// Translations learnt after the file was made (collective: every rank passes the same).
    public func rewriteTranslations(_ positions: [(y: Double, x: Double)]) throws {
        guard positions.count == scan.frames else {
            throw CXIError(file: path, dataset: CXIPaths.translation, problem: "\(positions.count) positions for \(scan.frames) frames")
        }
        try file.openDataset(CXIPaths.translation).write(positions.flatMap { [-$0.x, -$0.y, 0] })
    }

    /// The probe estimate, once it is known (after the frames).
    public func writeIllumination(_ probe: Array2D<Complex<Float>>) throws {
        try file.write(probe.values, to: CXIPaths.illumination, shape: probe.shape)
    }

    /// The simulation truth of `reader`'s scan (object, probe, positions,
    /// thickness, settings; not the raw-sized intensities), so a cleaned
    /// scan can still be judged against it.
    public func copyTruth(from reader: CXIReader) throws {
        guard reader.hasTruth else { return }
        let g = try file.createGroup(CXIPaths.truth)
        let base = CXIPaths.truth + "/"
        for name in ["object", "probe", "probe_modes"] where reader.exists(base + name) {
            try g.write(try reader.read(base + name, as: Complex<Float>.self), to: name, shape: try reader.shape(of: base + name))
        }
        if reader.exists(base + "thickness") {
            try g.write(try reader.read(base + "thickness", as: Float.self), to: "thickness", shape: try reader.shape(of: base + "thickness"))
        }
        if reader.exists(base + "positions_px") {
            try g.write(try reader.read(base + "positions_px", as: Double.self), to: "positions_px",
                        shape: try reader.shape(of: base + "positions_px"))
        }
        if reader.exists(base + "mode_fractions") {
            try g.write(try reader.read(base + "mode_fractions", as: Double.self), to: "mode_fractions",
                        shape: try reader.shape(of: base + "mode_fractions"))
        }
        if reader.exists(base + "object_pixel_size") {
            try g.write(scalar: try reader.read(base + "object_pixel_size", as: Double.self)[0], to: "object_pixel_size")
        }
        if reader.exists(base + "config") { try g.write(string: try reader.readString(base + "config"), to: "config") }
    }

    /// Scan images from preprocessing (see docs/CXI.md), the same values from every rank.
    public func writeScanImages(_ images: ScanImages) throws {
        try Self.writeScanImages(images, into: file)
    }

    /// The scan images into any open file (a reconstruction's, too).
    public static func writeScanImages(_ images: ScanImages, into file: HDF5File) throws {
        let g = try file.createGroup(CXIPaths.scanImages)
        let n = images.transmission.count
        try g.write(images.transmission, to: "transmission", shape: [n])
        try g.write(images.centreOfMassY, to: "centre_of_mass_y", shape: [n])
        try g.write(images.centreOfMassX, to: "centre_of_mass_x", shape: [n])
        let shape = [images.gridHeight, images.gridWidth]
        let t = try g.write(images.transmissionImage, to: "transmission_image", shape: shape)
        try t.setAttribute("units", string: "photons")
        try g.write(images.dpcYImage, to: "dpc_y_image", shape: shape)
        try g.write(images.dpcXImage, to: "dpc_x_image", shape: shape)
        try g.write(scalar: images.gridStep, to: "grid_step")
        try g.write([images.gridOriginY, images.gridOriginX], to: "grid_origin", shape: [2])
        try g.write(images.centre, to: "diffraction_centre", shape: [2])
    }

    public func writeDarks(_ values: [UInt16], first: Int, count: Int) throws {
        guard let dark else {
            throw CXIError(file: path, dataset: CXIPaths.dark, problem: "the scan was declared with no dark frames")
        }
        try dark.write(values, offset: [first, 0, 0], count: [count, scan.frameHeight, scan.frameWidth])
    }

    /// Records the simulation's ground truth (every rank passes the same simulation).
    public func writeTruth(_ sim: Simulation, intensities: Bool) throws {
        let truth = try file.createGroup(CXIPaths.truth)
        try truth.setAttribute("description", string: "nanosurveyor simulation ground truth; not measured data")
        try truth.write(sim.object.values, to: "object", shape: sim.object.shape)
        try truth.write(sim.thickness.values, to: "thickness", shape: sim.thickness.shape)
        try truth.write(sim.probe.values, to: "probe", shape: sim.probe.shape)
        if sim.modes.count > 1 {
            let n = sim.frameSize
            try truth.write(sim.modes.flatMap(\.values), to: "probe_modes", shape: [sim.modes.count, n, n])
            try truth.write(sim.modeFractions, to: "mode_fractions", shape: [sim.modes.count])
        }
        try truth.write(scalar: sim.config.geometry.samplePixelSize, to: "object_pixel_size")
        try truth.write(sim.points.flatMap { [$0.pixelY, $0.pixelX] }, to: "positions_px", shape: [sim.frameCount, 2])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try truth.write(string: String(decoding: try encoder.encode(sim.config), as: UTF8.self), to: "config")
        if intensities {
            let n = sim.frameSize
            truthIntensities = try truth.createDataset("intensities", of: Float.self, shape: [sim.frameCount, n, n], chunks: [1, n, n])
        }
        if let d = sim.detector {
            let g = try truth.createGroup("detector")
            let n = sim.frameSize
            try g.write(scalar: d.model.gain, to: "gain")
            try g.write(d.offsetCoefficients.flatMap { $0 }, to: "offset_coefficients", shape: [d.layout.channels, 3])
            try g.write(d.darkCurrent, to: "dark_current", shape: [n, n])
            try g.write(d.noise, to: "read_noise", shape: [n, n])
            try g.write(d.mask, to: "mask", shape: [n, n])
            let k = d.model.spikesPerChannel
            try g.write(d.spikes.flatMap { $0.map { $0.frequency } }, to: "spike_frequencies", shape: [d.layout.channels, k])
            try g.write(d.spikes.flatMap { $0.map { $0.amplitude } }, to: "spike_amplitudes", shape: [d.layout.channels, k])
        }
    }

    /// Clean (noise-free) intensities for frames [first, first + count).
    public func writeTruthIntensities(_ values: [Float], first: Int, count: Int) throws {
        guard let truthIntensities else {
            throw CXIError(file: path, dataset: CXIPaths.truth + "/intensities", problem: "truth intensities were not requested")
        }
        let n = scan.frameHeight
        let w = scan.readout?.columns ?? scan.frameWidth
        try truthIntensities.write(values, offset: [first, 0, 0], count: [count, n, w])
    }

    /// Collective: closes the file and moves it into place.
    public func close() throws {
        finished = true
        do { try file.close() } catch {
            CollectiveOutput.discard(pending, comm: comm)
            throw error
        }
        try CollectiveOutput.commit(pending, comm: comm)
    }

    /// Collective: closes the file and removes it; the target is untouched.
    public func discard() {
        finished = true
        try? file.close()
        CollectiveOutput.discard(pending, comm: comm)
    }

    /// A writer dropped without `close` (an error on the way) leaves no temporary behind.
    deinit { if !finished { CollectiveOutput.discard(pending, comm: comm) } }
}
