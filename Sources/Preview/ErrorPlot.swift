import Foundation

/// Error curves against the iteration on a log axis, with a title, both
/// axes labelled and a legend naming each curve.
public enum ErrorPlot {
    public struct Series: Sendable {
        public var name: String
        public var values: [Double]
        public var colour: (UInt8, UInt8, UInt8)
        public init(name: String, values: [Double], colour: (UInt8, UInt8, UInt8)) {
            self.name = name
            self.values = values
            self.colour = colour
        }
    }

    public static func render(_ series: [Series], title: String = "Reconstruction error per iteration",
                              yLabel: String = "error (log scale)", width: Int = 520, height: Int = 340) -> Raster {
        var image = Raster(width: width, height: height, rgb: true, fill: 255)
        let left = 64, right = width - 14, top = 26, bottom = height - 36
        image.text(title, y: 6, x: (left + right) / 2, align: .centre)
        image.text(yLabel, y: (top + bottom) / 2, x: 4, align: .centre, vertical: true)
        image.text("iteration", y: bottom + 20, x: (left + right) / 2, align: .centre)
        let finite = series.flatMap(\.values).filter { $0.isFinite && $0 > 0 }
        let count = series.map(\.values.count).max() ?? 0
        // Axes even without data, so an empty plot still reads as a plot.
        image.line(bottom, left, bottom, right, Raster.ink)
        image.line(top, left, bottom, left, Raster.ink)
        guard let lowest = finite.min(), let highest = finite.max(), count > 0 else {
            image.text("no iterations yet", y: (top + bottom) / 2, x: (left + right) / 2, align: .centre)
            return image
        }
        let lo = log10(lowest).rounded(.down), hi = max(log10(highest).rounded(.up), lo + 1)
        func yOf(_ v: Double) -> Int { bottom - Int(((log10(v) - lo) / (hi - lo) * Double(bottom - top)).rounded()) }
        func xOf(_ i: Int) -> Int { left + (count > 1 ? i * (right - left) / (count - 1) : 0) }
        for d in Int(lo)...Int(hi) {
            let y = yOf(pow(10, Double(d)))
            image.line(y, left + 1, y, right, (225, 225, 225))
            image.line(y, left - 3, y, left, Raster.ink)
            image.text("1e\(d)", y: y - FixedFont.ascent / 2 - 1, x: left - 5, align: .right)
        }
        for i in ticks(count) {
            let x = xOf(i - 1)
            image.line(bottom, x, bottom + 3, x, Raster.ink)
            image.text("\(i)", y: bottom + 5, x: x, align: .centre)
        }
        for s in series {
            var previous: (Int, Int)?
            let measured = s.values.filter { $0.isFinite && $0 > 0 }.count
            for (i, v) in s.values.enumerated() {
                // Gaps (iterations not measured) are bridged; a lone measurement is a mark.
                guard v.isFinite, v > 0 else { continue }
                let point = (yOf(v), xOf(i))
                if let p = previous { image.line(p.0, p.1, point.0, point.1, s.colour) }
                if measured == 1 { image.square(point.0, point.1, s.colour) }
                previous = point
            }
        }
        let shown = series.filter { $0.values.contains { $0.isFinite && $0 > 0 } }
        image.legend(shown.map { ($0.name, $0.colour, .line) }, top: top + 4, right: right - 4)
        return image
    }

    /// Iteration numbers to mark (1-based): the first, the last, and round steps between.
    static func ticks(_ count: Int) -> [Int] {
        guard count > 1 else { return [1] }
        let raw = Double(count) / 6
        let magnitude = pow(10, log10(raw).rounded(.down))
        let step = max(1, Int([1, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw))
        var marks = [1] + stride(from: step, to: count, by: step).filter { $0 > 1 && Double(count - $0) > Double(step) * 0.4 }
        marks.append(count)
        return marks
    }
}
