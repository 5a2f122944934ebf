import Foundation

/// Two panels against the rank count (log 2 axis): parallel efficiency
/// (0 to 1.2, grid every 0.25) and bytes per rank and iteration (log axis).
/// Strong scaling is blue, weak orange; hollow marks are oversubscribed runs.
/// On the right, filled marks are counted halo bytes, the thin line the halo
/// model, red the whole-object allreduce of the peer tools.
public enum ScalingPlot {
    public struct Point: Sendable {
        public var ranks: Int
        public var efficiency: Double?
        public var haloBytes: Double
        public var modelHaloBytes: Double
        public var allreduceBytes: Double
        public var oversubscribed: Bool
        public init(ranks: Int, efficiency: Double?, haloBytes: Double, modelHaloBytes: Double, allreduceBytes: Double,
                    oversubscribed: Bool) {
            self.ranks = ranks
            self.efficiency = efficiency
            self.haloBytes = haloBytes
            self.modelHaloBytes = modelHaloBytes
            self.allreduceBytes = allreduceBytes
            self.oversubscribed = oversubscribed
        }
    }

    public static let strongColour: (UInt8, UInt8, UInt8) = (31, 119, 180)
    public static let weakColour: (UInt8, UInt8, UInt8) = (255, 127, 14)
    static let allreduceColour: (UInt8, UInt8, UInt8) = (214, 39, 40)
    static let grid: (UInt8, UInt8, UInt8) = (220, 220, 220)
    static let black: (UInt8, UInt8, UInt8) = (0, 0, 0)

    public static func render(strong: [Point], weak: [Point], panelWidth: Int = 360, height: Int = 300) -> Raster {
        var image = Raster(width: 2 * panelWidth, height: height, rgb: true, fill: 255)
        let all = strong + weak
        let maxRanks = max(2, all.map(\.ranks).max() ?? 2)
        let top = 12, bottom = height - 24
        let lastPower = Int(log2(Double(maxRanks)).rounded(.up))
        func xOf(_ ranks: Int, _ left: Int, _ right: Int) -> Int {
            left + Int((log2(Double(ranks)) / Double(lastPower) * Double(right - left)).rounded())
        }
        func axes(_ left: Int, _ right: Int) {
            ErrorPlot.line(&image, bottom, left, bottom, right, black)
            ErrorPlot.line(&image, top, left, bottom, left, black)
            for p in 0...lastPower {
                let x = xOf(1 << p, left, right)
                ErrorPlot.line(&image, bottom, x, bottom + 3, x, black)
                let label = "\(1 << p)"
                ErrorPlot.text(&image, label, y: bottom + 7, rightEdge: x + 2 * label.count - 1)
            }
        }

        // Efficiency.
        let l1 = 40, r1 = panelWidth - 12
        axes(l1, r1)
        func yEff(_ e: Double) -> Int { bottom - Int((min(max(e, 0), 1.2) / 1.2 * Double(bottom - top)).rounded()) }
        for k in 1...4 {
            let e = Double(k) * 0.25, y = yEff(e)
            ErrorPlot.line(&image, y, l1 + 1, y, r1, grid)
            ErrorPlot.text(&image, k == 4 ? "1" : String(format: "%.2f", e).replacingOccurrences(of: "0.", with: "."),
                           y: y - 2, rightEdge: l1 - 4)
        }
        for (points, colour) in [(strong, strongColour), (weak, weakColour)] {
            let marks = points.sorted { $0.ranks < $1.ranks }.compactMap { p in p.efficiency.map { (yEff($0), xOf(p.ranks, l1, r1), p.oversubscribed) } }
            draw(&image, marks, colour: colour, connect: true)
        }

        // Bytes per rank and iteration.
        let l2 = panelWidth + 44, r2 = 2 * panelWidth - 12
        axes(l2, r2)
        let values = all.flatMap { [$0.haloBytes, $0.modelHaloBytes, $0.allreduceBytes] }.filter { $0 > 0 }
        guard let lowest = values.min(), let highest = values.max() else { return image }
        let lo = log10(lowest).rounded(.down), hi = max(log10(highest).rounded(.up), lo + 1)
        func yBytes(_ v: Double) -> Int { bottom - Int(((log10(v) - lo) / (hi - lo) * Double(bottom - top)).rounded()) }
        for d in Int(lo)...Int(hi) {
            let y = yBytes(pow(10, Double(d)))
            ErrorPlot.line(&image, y, l2 + 1, y, r2, grid)
            ErrorPlot.text(&image, "1e\(d)", y: y - 2, rightEdge: l2 - 4)
        }
        for (points, colour) in [(strong, strongColour), (weak, weakColour)] {
            let sorted = points.sorted { $0.ranks < $1.ranks }
            let model = sorted.filter { $0.modelHaloBytes > 0 }.map { (yBytes($0.modelHaloBytes), xOf($0.ranks, l2, r2), false) }
            draw(&image, model, colour: colour, connect: true, marks: false)
            let measured = sorted.filter { $0.haloBytes > 0 }.map { (yBytes($0.haloBytes), xOf($0.ranks, l2, r2), $0.oversubscribed) }
            draw(&image, measured, colour: colour, connect: false)
            let allreduce = sorted.filter { $0.allreduceBytes > 0 }.map { (yBytes($0.allreduceBytes), xOf($0.ranks, l2, r2), false) }
            draw(&image, allreduce, colour: allreduceColour, connect: true, marks: false)
        }
        return image
    }

    static func draw(_ image: inout Raster, _ points: [(Int, Int, Bool)], colour: (UInt8, UInt8, UInt8), connect: Bool,
                     marks: Bool = true) {
        if connect {
            for (a, b) in zip(points, points.dropFirst()) { ErrorPlot.line(&image, a.0, a.1, b.0, b.1, colour) }
        }
        guard marks else { return }
        for (y, x, hollow) in points {
            for dy in -3...3 {
                for dx in -3...3 where !hollow || abs(dy) == 3 || abs(dx) == 3 { image.set(y + dy, x + dx, colour) }
            }
        }
    }
}
