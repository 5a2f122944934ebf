import Foundation

/// A line plot of error curves against the iteration, log scale, with
/// decade grid lines labelled in a small built-in digit font.
public enum ErrorPlot {
    public struct Series: Sendable {
        public var values: [Double]
        public var colour: (UInt8, UInt8, UInt8)
        public init(values: [Double], colour: (UInt8, UInt8, UInt8)) {
            self.values = values
            self.colour = colour
        }
    }

    public static func render(_ series: [Series], width: Int = 480, height: Int = 320) -> Raster {
        var image = Raster(width: width, height: height, rgb: true, fill: 255)
        let left = 44, right = width - 12, top = 12, bottom = height - 24
        let finite = series.flatMap(\.values).filter { $0.isFinite && $0 > 0 }
        let count = series.map(\.values.count).max() ?? 0
        // Axes even without data, so an empty plot still reads as a plot.
        line(&image, bottom, left, bottom, right, (0, 0, 0))
        line(&image, top, left, bottom, left, (0, 0, 0))
        guard let lowest = finite.min(), let highest = finite.max(), count > 0 else { return image }
        let lo = lowest.log10.rounded(.down), hi = max(highest.log10.rounded(.up), lo + 1)
        func yOf(_ v: Double) -> Int { bottom - Int(((v.log10 - lo) / (hi - lo) * Double(bottom - top)).rounded()) }
        func xOf(_ i: Int) -> Int { left + (count > 1 ? i * (right - left) / (count - 1) : 0) }
        for d in Int(lo)...Int(hi) {
            let y = yOf(pow(10, Double(d)))
            line(&image, y, left + 1, y, right, (220, 220, 220))
            text(&image, "1e\(d)", y: y - 3, rightEdge: left - 4)
        }
        text(&image, "\(count)", y: bottom + 6, rightEdge: right)
        text(&image, "1", y: bottom + 6, rightEdge: left + 3)
        for s in series {
            var previous: (Int, Int)?
            for (i, v) in s.values.enumerated() {
                // Gaps (iterations not measured) are bridged.
                guard v.isFinite, v > 0 else { continue }
                let point = (yOf(v), xOf(i))
                if let p = previous { line(&image, p.0, p.1, point.0, point.1, s.colour) } else { image.set(point.0, point.1, s.colour) }
                previous = point
            }
        }
        return image
    }

    static func line(_ image: inout Raster, _ y0: Int, _ x0: Int, _ y1: Int, _ x1: Int, _ c: (UInt8, UInt8, UInt8)) {
        let steps = max(abs(y1 - y0), abs(x1 - x0), 1)
        for s in 0...steps {
            image.set(y0 + (y1 - y0) * s / steps, x0 + (x1 - x0) * s / steps, c)
        }
    }

    /// 3x5 glyphs for digits, 'e', '-' and '.', one row of bits per line.
    static let glyphs: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
        "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
        "e": [0, 7, 7, 4, 7], "-": [0, 0, 7, 0, 0], ".": [0, 0, 0, 0, 2],
    ]

    static func text(_ image: inout Raster, _ s: String, y: Int, rightEdge: Int) {
        var x = rightEdge - 4 * s.count + 1
        for ch in s {
            for (row, bits) in (glyphs[ch] ?? []).enumerated() {
                for col in 0..<3 where bits & (4 >> col) != 0 { image.set(y + row, x + col, (0, 0, 0)) }
            }
            x += 4
        }
    }
}

private extension Double {
    var log10: Double { Foundation.log10(self) }
}
