import Recon
import SwiftHDF5
import SwiftPNG
import SwiftTIFF

/// A user's 2-D image: a PNG file (grayscale, or colour as luminance), a
/// TIFF file (8-, 16- or 32-bit, as SEMs write them; the first image), or a
/// 2-D array in an HDF5 file named "FILE:/dataset" (or just FILE when it
/// holds one dataset at the top level).
public enum ImageInput {
    public static func read(_ spec: String) throws -> Array2D<Float> {
        let lower = spec.lowercased()
        if lower.hasSuffix(".tif") || lower.hasSuffix(".tiff") {
            do {
                let image = try TIFFImage.readGray(spec)
                return Array2D(height: image.height, width: image.width, values: image.values)
            } catch let e as TIFFError {
                throw CXIError(file: spec, dataset: "TIFF", problem: e.reason)
            }
        }
        if spec.lowercased().hasSuffix(".png") {
            do {
                let image = try PNGImage.readGray(spec)
                return Array2D(height: image.height, width: image.width, values: image.values)
            } catch let e as PNGError {
                throw CXIError(file: spec, dataset: "PNG", problem: e.reason)
            }
        }
        var path = spec, dataset: String? = nil
        if let colon = spec.range(of: ":/", options: .backwards) {
            path = String(spec[..<colon.lowerBound])
            dataset = String(spec[spec.index(after: colon.lowerBound)...])
        }
        let file: HDF5File
        do { file = try HDF5File(path: path, mode: .readOnly) } catch let e as HDF5Error {
            throw CXIError(file: path, dataset: dataset ?? "/", problem: e.reason)
        }
        if dataset == nil {
            let top = try file.children()
            guard top.count == 1 else {
                throw CXIError(file: path, dataset: "/", problem: "holds \(top.count) entries \(top); name one as \(path):/NAME")
            }
            dataset = "/" + top[0]
        }
        let name = dataset!
        guard file.exists(name) else { throw CXIError(file: path, dataset: name, problem: "missing") }
        let d = try file.openDataset(name)
        let shape = try d.shape
        guard shape.count == 2, shape[0] > 1, shape[1] > 1 else {
            throw CXIError(file: path, dataset: name, problem: "shape \(shape) is not a 2-D image")
        }
        let values = try d.read(Float.self)
        guard values.allSatisfy({ $0.isFinite }) else {
            throw CXIError(file: path, dataset: name, problem: "holds non-finite values")
        }
        return Array2D(height: shape[0], width: shape[1], values: values)
    }
}
