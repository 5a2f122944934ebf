import Foundation
import SwiftPNG
import Testing

@Suite struct PNGImageTests {
    @Test func grayRoundTripIsExact() throws {
        let path = NSTemporaryDirectory() + "ns-png-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let pixels = (0..<(7 * 5)).map { UInt8($0 * 7 % 256) }
        try PNGImage.write(path, width: 7, height: 5, pixels: pixels, rgb: false)
        let image = try PNGImage.readGray(path)
        #expect(image.width == 7 && image.height == 5)
        #expect(image.values == pixels.map { Float($0) / 255 })
    }

    @Test func colourReadsAsLuminance() throws {
        let path = NSTemporaryDirectory() + "ns-png-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PNGImage.write(path, width: 2, height: 1, pixels: [255, 255, 255, 0, 0, 0], rgb: true)
        let image = try PNGImage.readGray(path)
        #expect(image.values == [1, 0])
    }

    @Test func badInputsAreErrors() throws {
        let missing = try #require(throws: PNGError.self) { try PNGImage.readGray("/nonexistent/x.png") }
        #expect(missing.path == "/nonexistent/x.png" && !missing.reason.isEmpty)
        let text = NSTemporaryDirectory() + "ns-notpng-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: text) }
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        #expect(throws: PNGError.self) { try PNGImage.readGray(text) }
        #expect(throws: PNGError.self) { try PNGImage.write(text, width: 2, height: 2, pixels: [1], rgb: false) }
    }
}
