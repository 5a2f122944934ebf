import CTIFF
import Foundation

public struct TIFFError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// TIFF images through libtiff, as microscopes write them: 8-, 16- or
/// 32-bit unsigned or signed integers or 32-bit floats, grey or RGB(A),
/// in strips or tiles, any compression libtiff decodes.
public enum TIFFImage {
    /// The largest image read, in pixels (a 16384 x 16384 micrograph).
    public static let maxPixels = 1 << 28

    /// The first image of the file as grey values in its own units (RGB as
    /// luminance; min-is-white inverted), row-major.
    public static func readGray(_ path: String) throws -> (height: Int, width: Int, values: [Float]) {
        func fail(_ reason: String) -> TIFFError { TIFFError(path: path, reason: reason) }
        func libraryMessage(_ fallback: String) -> String {
            let m = String(cString: nstiff_message())
            return m.isEmpty ? fallback : m
        }
        nstiff_keep_errors()
        guard FileManager.default.fileExists(atPath: path) else { throw fail("no such file") }
        guard let tiff = TIFFOpen(path, "r") else { throw fail(libraryMessage("not a TIFF file")) }
        defer { TIFFClose(tiff) }

        var width: UInt32 = 0, height: UInt32 = 0
        guard nstiff_u32(tiff, UInt32(TIFFTAG_IMAGEWIDTH), &width) == 1, nstiff_u32(tiff, UInt32(TIFFTAG_IMAGELENGTH), &height) == 1,
              width > 0, height > 0 else { throw fail("no image size") }
        guard Int(width) * Int(height) <= maxPixels else {
            throw fail("\(width)x\(height) pixels is over the \(maxPixels) this reader takes")
        }
        var bits: UInt16 = 0, samples: UInt16 = 0, format: UInt16 = 0, planar: UInt16 = 0, photometric: UInt16 = 0
        _ = nstiff_u16_defaulted(tiff, UInt32(TIFFTAG_BITSPERSAMPLE), &bits)
        _ = nstiff_u16_defaulted(tiff, UInt32(TIFFTAG_SAMPLESPERPIXEL), &samples)
        _ = nstiff_u16_defaulted(tiff, UInt32(TIFFTAG_SAMPLEFORMAT), &format)
        _ = nstiff_u16_defaulted(tiff, UInt32(TIFFTAG_PLANARCONFIG), &planar)
        if nstiff_u16_defaulted(tiff, UInt32(TIFFTAG_PHOTOMETRIC), &photometric) != 1 { photometric = UInt16(PHOTOMETRIC_MINISBLACK) }
        let sample: Sample
        switch (Int32(format), bits) {
        case (SAMPLEFORMAT_UINT, 8): sample = .uint8
        case (SAMPLEFORMAT_UINT, 16): sample = .uint16
        case (SAMPLEFORMAT_UINT, 32): sample = .uint32
        case (SAMPLEFORMAT_INT, 8): sample = .int8
        case (SAMPLEFORMAT_INT, 16): sample = .int16
        case (SAMPLEFORMAT_INT, 32): sample = .int32
        case (SAMPLEFORMAT_IEEEFP, 32): sample = .float32
        default: throw fail("\(bits)-bit samples of format \(format) are not read (8, 16 or 32-bit integers, 32-bit floats)")
        }
        // The row buffers are sized from this: grey, grey + alpha, RGB or RGBA only.
        guard (1...4).contains(samples) else { throw fail("\(samples) samples per pixel (grey or RGB(A) has 1 to 4)") }
        guard samples == 1 || Int32(planar) == PLANARCONFIG_CONTIG else {
            throw fail("\(samples) samples per pixel in separate planes are not read (interleaved only)")
        }
        let spp = Int(samples), size = sample.bytes, (w, h) = (Int(width), Int(height))
        var raw = [UInt8](repeating: 0, count: w * h * spp * size)
        let rowBytes = w * spp * size

        if TIFFIsTiled(tiff) != 0 {
            var tileWidth: UInt32 = 0, tileHeight: UInt32 = 0
            guard nstiff_u32(tiff, UInt32(TIFFTAG_TILEWIDTH), &tileWidth) == 1, nstiff_u32(tiff, UInt32(TIFFTAG_TILELENGTH), &tileHeight) == 1,
                  tileWidth > 0, tileHeight > 0, Int(tileWidth) * Int(tileHeight) <= maxPixels else { throw fail("bad tile size") }
            let (tw, th) = (Int(tileWidth), Int(tileHeight))
            var tile = [UInt8](repeating: 0, count: max(Int(TIFFTileSize(tiff)), tw * th * spp * size))
            for y0 in stride(from: 0, to: h, by: th) {
                for x0 in stride(from: 0, to: w, by: tw) {
                    guard TIFFReadTile(tiff, &tile, UInt32(x0), UInt32(y0), 0, 0) >= 0 else {
                        throw fail(libraryMessage("tile at (\(y0), \(x0)) cannot be read"))
                    }
                    let columns = min(tw, w - x0) * spp * size
                    for r in 0..<min(th, h - y0) {
                        let from = r * tw * spp * size, to = (y0 + r) * rowBytes + x0 * spp * size
                        raw.replaceSubrange(to..<(to + columns), with: tile[from..<(from + columns)])
                    }
                }
            }
        } else {
            var line = [UInt8](repeating: 0, count: max(Int(TIFFScanlineSize(tiff)), rowBytes))
            for y in 0..<h {
                guard TIFFReadScanline(tiff, &line, UInt32(y), 0) >= 0 else { throw fail(libraryMessage("row \(y) cannot be read")) }
                raw.replaceSubrange((y * rowBytes)..<((y + 1) * rowBytes), with: line[0..<rowBytes])
            }
        }

        // libtiff hands samples over in the machine's byte order.
        let rgb = Int32(photometric) == PHOTOMETRIC_RGB && spp >= 3
        var values = [Float](repeating: 0, count: w * h)
        raw.withUnsafeBytes { bytes in
            for i in 0..<(w * h) {
                let base = i * spp * size
                values[i] = rgb
                    ? 0.2126 * sample.value(bytes, base) + 0.7152 * sample.value(bytes, base + size) + 0.0722 * sample.value(bytes, base + 2 * size)
                    : sample.value(bytes, base)
            }
        }
        if Int32(photometric) == PHOTOMETRIC_MINISWHITE {
            let top = values.max() ?? 0
            for i in values.indices { values[i] = top - values[i] }
        }
        guard values.allSatisfy({ $0.isFinite }) else { throw fail("holds non-finite values") }
        return (h, w, values)
    }

    enum Sample {
        case uint8, uint16, uint32, int8, int16, int32, float32

        var bytes: Int {
            switch self {
            case .uint8, .int8: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            }
        }

        func value(_ b: UnsafeRawBufferPointer, _ offset: Int) -> Float {
            switch self {
            case .uint8: Float(b.load(fromByteOffset: offset, as: UInt8.self))
            case .int8: Float(b.load(fromByteOffset: offset, as: Int8.self))
            case .uint16: Float(b.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            case .int16: Float(b.loadUnaligned(fromByteOffset: offset, as: Int16.self))
            case .uint32: Float(b.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            case .int32: Float(b.loadUnaligned(fromByteOffset: offset, as: Int32.self))
            case .float32: b.loadUnaligned(fromByteOffset: offset, as: Float.self)
            }
        }
    }
}
