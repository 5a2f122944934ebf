import Foundation
import Ingest
import Numerics
import Recon
import SwiftHDF5
import SwiftMPI

/// How a file's translations become probe positions on the object.
///
/// CXI stores the sample's motion (x, y, z) in m, so by default the probe
/// position is its negative. Files that store the probe position instead,
/// or use other axes, need the flags; a wrong choice gives a smeared image,
/// so `ns-mpirun inspect` draws the scan for a person to check.
public struct TranslationConvention: Equatable, Sendable, Codable {
    /// The file stores probe positions on the object (no sign change).
    public var probePositions: Bool
    public var flipX: Bool
    public var flipY: Bool
    /// The first two columns are (y, x) instead of (x, y).
    public var swapXY: Bool

    public init(probePositions: Bool = false, flipX: Bool = false, flipY: Bool = false, swapXY: Bool = false) {
        self.probePositions = probePositions
        self.flipX = flipX
        self.flipY = flipY
        self.swapXY = swapXY
    }

    public static let cxi = TranslationConvention()

    /// The probe position for a translation row's first two values.
    public func position(_ first: Double, _ second: Double) -> (y: Double, x: Double) {
        var (x, y) = swapXY ? (second, first) : (first, second)
        if !probePositions { (x, y) = (-x, -y) }
        if flipX { x = -x }
        if flipY { y = -y }
        return (y, x)
    }
}

extension HDF5Dataset {
    /// A block as complex64: other tools store some complex images (a probe, an object) as real.
    public func readComplex(offset: [Int], count: [Int]) throws -> [Complex<Float>] {
        if case .complex = try storedType { return try read(Complex<Float>.self, offset: offset, count: count) }
        return try read(Float.self, offset: offset, count: count).map { Complex($0, 0) }
    }
}

/// A CXI scan read from disk, checked on opening: the metadata is loaded,
/// frames are read on demand (whole, by block, or collectively).
public final class CXIReader {
    public let path: String
    public let scan: CXIScan
    public let frameCount: Int
    public let dataPath: String
    public let dataType: HDF5Dataset.StoredType
    public let translationPath: String
    private let file: HDF5File
    private let data: HDF5Dataset

    public init(path: String, convention: TranslationConvention = .cxi, comm: Communicator? = nil) throws {
        self.path = path
        let file: HDF5File
        do {
            file = try HDF5File(path: path, mode: .readOnly, comm: comm)
        } catch let error as HDF5Error {
            throw CXIError(file: path, dataset: "/", problem: error.reason)
        }
        func fail(_ dataset: String, _ problem: String) -> CXIError { CXIError(file: path, dataset: dataset, problem: problem) }

        guard let dataPath = CXIPaths.dataCandidates.first(where: { file.exists($0) }) else {
            throw fail(CXIPaths.dataCandidates.joined(separator: " or "), "missing: the file holds no diffraction frames")
        }
        self.dataPath = dataPath
        let data = try file.openDataset(dataPath)
        let shape = try data.shape
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw fail(dataPath, "shape \(shape) is not a non-empty stack of frames (N, y, x)")
        }
        let dataType = try data.storedType
        self.dataType = dataType
        switch dataType {
        case .float, .integer: break
        default: throw fail(dataPath, "type \(dataType) is not a real number type")
        }
        let frameCount = shape[0]
        self.frameCount = frameCount

        guard let translationPath = CXIPaths.translationCandidates.first(where: { file.exists($0) }) else {
            throw fail(CXIPaths.translationCandidates.joined(separator: " or "), "missing: the file has no scan positions")
        }
        self.translationPath = translationPath
        let tShape = try file.openDataset(translationPath).shape
        guard tShape.count == 2, tShape[1] == 3 || tShape[1] == 2 else {
            throw fail(translationPath, "shape \(tShape) is not (N, 3) or (N, 2)")
        }
        guard tShape[0] == frameCount else {
            throw fail(translationPath, "\(tShape[0]) positions for \(frameCount) frames in \(dataPath)")
        }
        let t = try file.read(translationPath, as: Double.self)
        if let bad = t.firstIndex(where: { !$0.isFinite }) {
            throw fail(translationPath, "position \(bad / tShape[1]) is not finite")
        }
        let positions = (0..<frameCount).map { convention.position(t[$0 * tShape[1]], t[$0 * tShape[1] + 1]) }

        func scalar(_ p: String, _ what: String) throws -> Double {
            guard file.exists(p) else { throw fail(p, "missing: the \(what) is required") }
            let v = try file.openDataset(p).read(Double.self)
            guard v.count == 1 else { throw fail(p, "expected one value, found \(v.count)") }
            guard v[0].isFinite && v[0] > 0 else { throw fail(p, "\(v[0]) is not a positive finite number") }
            return v[0]
        }
        let energy = try scalar(CXIPaths.energy, "photon energy (J)")
        let distance = try scalar(CXIPaths.distance, "detector distance (m)")
        let xPixel = try scalar(CXIPaths.xPixelSize, "detector pixel size (m)")
        let yPixel = file.exists(CXIPaths.yPixelSize) ? try scalar(CXIPaths.yPixelSize, "pixel size") : xPixel
        // Units mistaken (eV for J, mm for m) are refused here, before any grid is sized from them.
        for (dataset, problem) in [(CXIPaths.energy, ScanLimits.energyProblem(energy)), (CXIPaths.distance, ScanLimits.distanceProblem(distance)),
                                   (CXIPaths.xPixelSize, ScanLimits.pixelSizeProblem(xPixel)), (CXIPaths.yPixelSize, ScanLimits.pixelSizeProblem(yPixel))] {
            if let problem { throw fail(dataset, problem) }
        }

        var mask: [UInt32]? = nil
        if file.exists(CXIPaths.mask) {
            let m = try file.openDataset(CXIPaths.mask)
            guard try m.shape == [shape[1], shape[2]] else {
                throw fail(CXIPaths.mask, "shape \(try m.shape) does not match the frames' \(shape[1])x\(shape[2])")
            }
            mask = try m.read(UInt32.self)
        }
        var illumination: Array2D<Complex<Float>>? = nil
        if file.exists(CXIPaths.illumination) {
            let d = try file.openDataset(CXIPaths.illumination)
            let s = try d.shape
            // A probe, or probe modes (modes, y, x) of which the first is the strongest.
            guard s.count == 2 || (s.count == 3 && s[0] >= 1) else {
                throw fail(CXIPaths.illumination, "shape \(s) is not a 2-D probe or (modes, y, x) probe modes")
            }
            let plane = Array(s.suffix(2))
            let values = try d.readComplex(offset: s.map { _ in 0 }, count: s.count == 3 ? [1] + plane : plane)
            guard values.allSatisfy({ $0.real.isFinite && $0.imaginary.isFinite }) else {
                throw fail(CXIPaths.illumination, "holds non-finite values")
            }
            illumination = Array2D(height: plane[0], width: plane[1], values: values)
        }
        var readout: ReadoutLayout? = nil, gain: Double? = nil
        if file.exists(CXIPaths.readout + "/channels") {
            let g = try file.openGroup(CXIPaths.readout)
            let channels = Int(try g.readScalar("channels", as: Int64.self))
            let overscan = Int(try g.readScalar("overscan_columns", as: Int64.self))
            let columns = Int(try g.readScalar("image_columns", as: Int64.self))
            let layout = ReadoutLayout(rows: shape[1], columns: columns, channels: channels, overscan: overscan)
            guard layout.problems().isEmpty, layout.rawColumns == shape[2] else {
                throw fail(CXIPaths.readout, "\(channels) channels of \(columns / max(1, channels)) + \(overscan) columns do not make the frames' \(shape[2]) columns")
            }
            readout = layout
            if g.exists("gain") {
                let g = try g.readScalar("gain", as: Double.self)
                guard g.isFinite, g > 0 else { throw fail(CXIPaths.readout + "/gain", "\(g) ADU per photon: a gain must be positive") }
                gain = g
            }
        }
        let optics = try CXIOptics.read(from: file, path: path)
        let darks = file.exists(CXIPaths.dark) ? try file.openDataset(CXIPaths.dark).shape : []
        if !darks.isEmpty && (darks.count != 3 || darks[1] != shape[1] || darks[2] != shape[2]) {
            throw fail(CXIPaths.dark, "shape \(darks) does not match the frames' \(shape[1])x\(shape[2])")
        }
        scan = CXIScan(energy: energy, distance: distance, xPixelSize: xPixel, yPixelSize: yPixel,
                       frameHeight: shape[1], frameWidth: shape[2], positions: positions, mask: mask,
                       illumination: illumination, readout: readout, gain: gain,
                       darkFrames: darks.first ?? 0, optics: optics)
        self.file = file
        self.data = data
    }

    /// Frames [first, first + count) as Float, row-major; non-finite values
    /// are an error unless `allowNonFinite` (raw frames: the cleaner reads them as 0 and counts them).
    public func readFrames(first: Int, count: Int, collective: Bool = false, allowNonFinite: Bool = false) throws -> [Float] {
        guard first >= 0, count >= 0, first + count <= frameCount else {
            throw CXIError(file: path, dataset: dataPath, problem: "frames \(first)..<\(first + count) outside 0..<\(frameCount)")
        }
        let values = try data.read(Float.self, offset: [first, 0, 0], count: [count, scan.frameHeight, scan.frameWidth],
                                   collective: collective)
        if !allowNonFinite, case .float = dataType, let bad = values.firstIndex(where: { !$0.isFinite }) {
            let perFrame = scan.frameHeight * scan.frameWidth
            throw CXIError(file: path, dataset: dataPath,
                           problem: "frame \(first + bad / perFrame) has a non-finite value at pixel \(bad % perFrame)")
        }
        return values
    }

    public func readDarks(first: Int, count: Int) throws -> [Float] {
        try file.openDataset(CXIPaths.dark).read(Float.self, offset: [first, 0, 0], count: [count, scan.frameHeight, scan.frameWidth])
    }

    /// The simulation truth, when the file carries one.
    public var hasTruth: Bool { file.exists(CXIPaths.truth + "/object") }

    public func truthObject() throws -> Array2D<Complex<Float>> {
        let d = try file.openDataset(CXIPaths.truth + "/object")
        let s = try d.shape
        return Array2D(height: s[0], width: s[1], values: try d.read(Complex<Float>.self))
    }

    /// The truth object over `box` only (a rank's tile).
    public func truthObject(in box: Box) throws -> [Complex<Float>] {
        try file.openDataset(CXIPaths.truth + "/object").read(Complex<Float>.self, offset: [box.y0, box.x0],
                                                               count: [box.height, box.width])
    }

    public func truthProbe() throws -> Array2D<Complex<Float>> {
        let d = try file.openDataset(CXIPaths.truth + "/probe")
        let s = try d.shape
        return Array2D(height: s[0], width: s[1], values: try d.read(Complex<Float>.self))
    }

    public func truthIntensities(first: Int, count: Int) throws -> [Float] {
        let d = try file.openDataset(CXIPaths.truth + "/intensities")
        let s = try d.shape
        return try d.read(Float.self, offset: [first, 0, 0], count: [count, s[1], s[2]])
    }

    public func shape(of path: String) throws -> [Int] { try file.openDataset(path).shape }

    /// Any dataset in the file (for tools and tests).
    public func read<T: HDF5Element>(_ path: String, as type: T.Type) throws -> [T] { try file.read(path, as: T.self) }
    public func exists(_ path: String) -> Bool { file.exists(path) }
    public func readString(_ path: String) throws -> String { try file.readString(path) }
}
