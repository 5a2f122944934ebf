import CPNG

/// A failed PNG read or write, with libpng's own message.
public struct PNGError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "PNG '\(path)': \(reason)" }
}

/// PNG files through libpng's simplified API.
public enum PNGImage {
    public static var libraryVersion: String { String(cString: nspng_version()) }

    /// A grayscale image scaled to [0, 1]: 16-bit files keep their precision,
    /// colour files are converted to luminance by libpng.
    public static func readGray(_ path: String) throws -> (height: Int, width: Int, values: [Float]) {
        var image = png_image()
        image.version = nspng_image_version()
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            defer { png_image_free(&image) }
            throw PNGError(path: path, reason: message(image))
        }
        let sixteen = image.format & nspng_format_flag_linear() != 0
        image.format = sixteen ? nspng_format_linear_y() : nspng_format_gray()
        let width = Int(image.width), height = Int(image.height)
        let count = width * height
        if sixteen {
            var pixels = [UInt16](repeating: 0, count: count)
            guard png_image_finish_read(&image, nil, &pixels, 0, nil) != 0 else {
                throw PNGError(path: path, reason: message(image))
            }
            return (height, width, pixels.map { Float($0) / 65535 })
        }
        var pixels = [UInt8](repeating: 0, count: count)
        guard png_image_finish_read(&image, nil, &pixels, 0, nil) != 0 else {
            throw PNGError(path: path, reason: message(image))
        }
        return (height, width, pixels.map { Float($0) / 255 })
    }

    /// Writes 8-bit grayscale (one byte per pixel) or RGB (three) rows.
    public static func write(_ path: String, width: Int, height: Int, pixels: [UInt8], rgb: Bool) throws {
        let channels = rgb ? 3 : 1
        guard pixels.count == width * height * channels, width > 0, height > 0 else {
            throw PNGError(path: path, reason: "\(pixels.count) bytes for a \(width)x\(height) \(rgb ? "RGB" : "gray") image")
        }
        var image = png_image()
        image.version = nspng_image_version()
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = rgb ? nspng_format_rgb() : nspng_format_gray()
        guard png_image_write_to_file(&image, path, 0, pixels, 0, nil) != 0 else {
            defer { png_image_free(&image) }
            throw PNGError(path: path, reason: message(image))
        }
    }

    private static func message(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
