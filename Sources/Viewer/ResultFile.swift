import CXI
import Foundation
import Numerics
import Recon
import SwiftHDF5

/// One CXI file opened for the page: what a person looks at, read
/// tolerantly (a scan has no object, a live scan's file may have no frames),
/// each part's size checked before anything is read.
struct ResultFile {
    let path: String
    let name: String
    private let file: HDF5File
    /// Where the frames are, when the file has any.
    private let frames: String?

    /// The object is shown at most this many pixels a side (every step-th pixel, read row by row).
    static let shownSide = 1024
    /// Any other image or list read whole: at most this many elements.
    static let maxElements = 1 << 24
    static let processGroups = ["/entry_1/image_1/process_1", "/entry_1/process_1"]

    init(path: String, name: String) throws {
        self.path = path
        self.name = name
        let opened: HDF5File
        do {
            opened = try HDF5File(path: path, mode: .readOnly)
        } catch {
            throw ViewerError("\(name): not a readable HDF5 file (\(error))")
        }
        file = opened
        frames = CXIPaths.dataCandidates.first(where: { opened.exists($0) })
    }

    private func fail(_ dataset: String, _ problem: String) -> ViewerError { ViewerError("\(name): \(dataset): \(problem)") }

    /// A dataset's shape, refused when it is not `ranks`-dimensional or holds more than `limit` elements.
    private func shape(_ dataset: String, ranks: ClosedRange<Int>, limit: Int? = maxElements) throws -> [Int] {
        let s = try file.openDataset(dataset).shape
        guard ranks.contains(s.count), s.allSatisfy({ $0 > 0 }) else { throw fail(dataset, "shape \(s) is not what this dataset holds") }
        let elements = s.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
        if let limit, elements > limit { throw fail(dataset, "shape \(s) holds \(elements) elements, over the \(limit) this page reads") }
        return s
    }

    private func doubles(_ dataset: String) throws -> [Double]? {
        guard file.exists(dataset) else { return nil }
        _ = try shape(dataset, ranks: 0...2)
        return try file.read(dataset, as: Double.self)
    }

    private func string(_ dataset: String) -> String? {
        guard file.exists(dataset) else { return nil }
        return try? file.readString(dataset)
    }

    /// A JSON document stored as a string, parsed; the string itself when it is not JSON.
    private func document(_ dataset: String) -> Any? {
        guard let s = string(dataset) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(s.utf8))) ?? s
    }

    private static func finiteOrNull(_ values: [Double]) -> [Any] { values.map { $0.isFinite ? $0 as Any : NSNull() } }

    /// The overview: metadata, error history and positions in the header; object, probe and scan images as bodies.
    func overview() throws -> [UInt8] {
        var header: [String: Any] = ["type": "file", "name": name]
        var bodies: [BinaryMessage.Body] = []
        // A part that cannot be shown is named in `problems`; the rest of the file still is.
        var problems: [String] = []
        func tolerate(_ part: () throws -> Void) {
            do { try part() } catch { problems.append("\(error)") }
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        header["bytes"] = (attributes?[.size] as? Int) ?? 0
        header["modified"] = ((attributes?[.modificationDate] as? Date) ?? .distantPast).timeIntervalSince1970

        let hasObject = file.exists(CXIPaths.image)
        let raw = file.exists(CXIPaths.readout)
        header["kind"] = hasObject ? "reconstruction" : raw ? "raw scan" : frames != nil ? "scan" : "other"

        var instrument: [String: Any] = [:]
        for (key, dataset, scale) in [("energy_ev", CXIPaths.energy, 1 / PhysicalConstants.electronVolt), ("distance_m", CXIPaths.distance, 1.0),
                                      ("x_pixel_size_m", CXIPaths.xPixelSize, 1.0), ("y_pixel_size_m", CXIPaths.yPixelSize, 1.0)] {
            if let v = try? doubles(dataset), v.count == 1, v[0].isFinite { instrument[key] = v[0] * scale }
        }
        if let start = string("/entry_1/start_time") { instrument["start_time"] = start }
        if let frames {
            let dataset = frames, s = try shape(frames, ranks: 3...3, limit: nil)
            instrument["frames"] = s[0]
            instrument["frame_shape"] = [s[1], s[2]]
            instrument["frame_type"] = (try? file.openDataset(dataset).storedType.description) ?? "?"
            header["frames"] = s[0]
            header["frame_unit"] = raw ? "ADU" : "photons"
        }
        header["instrument"] = instrument

        if let group = Self.processGroups.first(where: { file.exists($0) }) {
            var process: [String: Any] = [:]
            for key in ["program", "version", "command", "date"] { process[key] = string(group + "/" + key) }
            header["process"] = process
            if let p = document(group + "/ns_parameters") { header["parameters"] = p }
            if let r = document(group + "/ns_stream_report") { header["stream_report"] = r }
            var errors: [String: Any] = [:]
            tolerate {
                if let v = try doubles(group + "/ns_fourier_error") { errors["fourier"] = Self.finiteOrNull(v) }
                if let v = try doubles(group + "/ns_truth_nrmse"), v.contains(where: \.isFinite) { errors["truth_nrmse"] = Self.finiteOrNull(v) }
                if let v = try doubles(group + "/ns_seconds") { errors["seconds"] = Self.finiteOrNull(v) }
            }
            header["errors"] = errors
            tolerate {
                guard file.exists(group + "/ns_tiles") else { return }
                let s = try shape(group + "/ns_tiles", ranks: 2...2)
                if s[1] == 4 {
                    let t = try file.read(group + "/ns_tiles", as: Int64.self).map(Int.init)
                    header["tiles"] = stride(from: 0, to: t.count, by: 4).map { Array(t[$0..<($0 + 4)]) }
                }
            }
        }

        var probeShape: [Int]? = nil
        tolerate {
            guard file.exists(CXIPaths.illumination) else { return }
            let s = try shape(CXIPaths.illumination, ranks: 2...3)
            let values = try file.openDataset(CXIPaths.illumination).readComplex(offset: s.map { _ in 0 }, count: s)
            bodies.append(BinaryMessage.body("probe", dtype: "complex64", shape: s, values: values))
            probeShape = s
        }
        var objectShape: [Int]? = nil
        tolerate {
            guard hasObject else { return }
            let (body, full, step) = try object()
            bodies.append(body)
            header["object_full_shape"] = full
            header["object_step"] = step
            objectShape = full
            if let p = try doubles("/entry_1/image_1/ns_pixel_size"), p.count == 1 { header["pixel_size_m"] = p[0] }
        }
        tolerate { try positions(into: &bodies, objectShape: objectShape, probeShape: probeShape, pixel: header["pixel_size_m"] as? Double) }
        for (part, dataset) in [("stxm", "transmission_image"), ("dpc_y", "dpc_y_image"), ("dpc_x", "dpc_x_image")] {
            tolerate {
                let p = CXIPaths.scanImages + "/" + dataset
                guard file.exists(p) else { return }
                let s = try shape(p, ranks: 2...2)
                bodies.append(BinaryMessage.body(part, dtype: "float32", shape: s, values: try file.read(p, as: Float.self)))
            }
        }
        if let step = try? doubles(CXIPaths.scanImages + "/grid_step"), let s = step.first { header["stxm_step_m"] = s }
        if !problems.isEmpty { header["problems"] = problems }
        guard let out = BinaryMessage.encode(header: header, bodies: bodies) else {
            throw ViewerError("\(name): its metadata cannot be sent as JSON")
        }
        return out
    }

    /// The scan positions in metres, and in the object's pixels (probe centres) where they land on its grid.
    private func positions(into bodies: inout [BinaryMessage.Body], objectShape: [Int]?, probeShape: [Int]?, pixel: Double?) throws {
        if let translation = CXIPaths.translationCandidates.first(where: { file.exists($0) }) {
            let s = try shape(translation, ranks: 2...2)
            if s[1] >= 2 {
                let t = try file.read(translation, as: Double.self)
                let positions = (0..<s[0]).map { TranslationConvention.cxi.position(t[$0 * s[1]], t[$0 * s[1] + 1]) }
                bodies.append(BinaryMessage.body("positions_m", dtype: "float32", shape: [s[0], 2],
                                                 values: positions.flatMap { [Float($0.y), Float($0.x)] }))
                if let objectShape, let probeShape, let pixel, pixel > 0,
                   positions.allSatisfy({ $0.y.isFinite && $0.x.isFinite }) {
                    let grid = ObjectGrid(positions: positions, pixelSize: pixel, frameSize: probeShape[probeShape.count - 1])
                    // Positions are drawn only where they land on this object's grid as the solver placed them.
                    if grid.height == objectShape[0] && grid.width == objectShape[1] {
                        let half = Double(grid.frameSize) / 2
                        bodies.append(BinaryMessage.body("positions_px", dtype: "float32", shape: [s[0], 2],
                                                         values: grid.exactCorners.flatMap { [Float($0.y + half), Float($0.x + half)] }))
                    }
                }
            }
        }
    }

    /// Every step-th pixel of the object, read a row at a time, so a large object costs
    /// at most `shownSide` rows of reading.
    private func object() throws -> (BinaryMessage.Body, full: [Int], step: Int) {
        let s = try shape(CXIPaths.image, ranks: 2...2, limit: nil)
        let (h, w) = (s[0], s[1])
        guard w <= 1 << 22, h <= 1 << 22 else { throw fail(CXIPaths.image, "shape \(s) is larger than any object this page shows") }
        let step = max(1, (max(h, w) + Self.shownSide - 1) / Self.shownSide)
        let (sh, sw) = ((h + step - 1) / step, (w + step - 1) / step)
        let d = try file.openDataset(CXIPaths.image)
        var shown = [Complex<Float>]()
        shown.reserveCapacity(sh * sw)
        for y in stride(from: 0, to: h, by: step) {
            let row = try d.readComplex(offset: [y, 0], count: [1, w])
            for x in stride(from: 0, to: w, by: step) { shown.append(row[x]) }
        }
        return (BinaryMessage.body("object", dtype: "complex64", shape: [sh, sw], values: shown), s, step)
    }

    /// The frames' dataset and shape (N, y, x), refused when a frame is larger than the page reads.
    private func frameStack() throws -> (String, [Int]) {
        guard let frames else { throw fail(CXIPaths.data, "missing: this file holds no frames") }
        let s = try shape(frames, ranks: 3...3, limit: nil)
        guard s[1] * s[2] <= Self.maxElements else {
            throw fail(frames, "frames of \(s[1]) x \(s[2]) are over the \(Self.maxElements) pixels this page reads")
        }
        return (frames, s)
    }

    /// One frame with its histogram (and the mask, 1 = good, when the file has one).
    func frame(_ index: Int) throws -> [UInt8] {
        let (dataset, s) = try frameStack()
        guard (0..<s[0]).contains(index) else { throw fail(dataset, "frame \(index) outside 0..<\(s[0])") }
        let values = try file.openDataset(dataset).read(Float.self, offset: [index, 0, 0], count: [1, s[1], s[2]])
        var histogram = LogHistogram()
        values.withUnsafeBufferPointer { histogram.add($0) }
        var bodies = [BinaryMessage.body("frame", dtype: "float32", shape: [s[1], s[2]], values: values)]
        if file.exists(CXIPaths.mask), try shape(CXIPaths.mask, ranks: 2...2) == [s[1], s[2]] {
            let mask = try file.read(CXIPaths.mask, as: UInt32.self).map { UInt8($0 == 0 ? 1 : 0) }
            bodies.append(BinaryMessage.body("mask", dtype: "uint8", shape: [s[1], s[2]], values: mask))
        }
        let header: [String: Any] = ["type": "frame", "name": name, "index": index, "frames": s[0],
                                     "unit": file.exists(CXIPaths.readout) ? "ADU" : "photons", "histogram": histogram.json]
        guard let out = BinaryMessage.encode(header: header, bodies: bodies) else { throw ViewerError("\(name): frame \(index) cannot be sent") }
        return out
    }

    /// The histogram of every pixel of every frame; past `budget` pixels, of evenly spaced frames
    /// (`frames_used` says how many).
    func photons(budget: Int = 1 << 28) throws -> [String: Any] {
        let (dataset, s) = try frameStack()
        let perFrame = s[1] * s[2]
        let used = max(1, min(s[0], budget / perFrame))
        let d = try file.openDataset(dataset)
        var histogram = LogHistogram()
        var sums: [Double] = []
        sums.reserveCapacity(used)
        var buffer = [Float](repeating: 0, count: perFrame)
        for k in 0..<used {
            let index = used == s[0] ? k : k * s[0] / used
            try buffer.withUnsafeMutableBufferPointer { b in
                try d.read(into: b, offset: [index, 0, 0], count: [1, s[1], s[2]])
            }
            let before = histogram.total
            buffer.withUnsafeBufferPointer { histogram.add($0) }
            sums.append(histogram.total - before)
        }
        return ["type": "photons", "name": name, "frames": s[0], "frames_used": used, "histogram": histogram.json,
                "unit": file.exists(CXIPaths.readout) ? "ADU" : "photons",
                "frame_sums": ["min": sums.min() ?? 0, "mean": sums.reduce(0, +) / Double(max(1, sums.count)), "max": sums.max() ?? 0]]
    }
}
