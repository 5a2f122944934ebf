import Foundation

/// Two panels against the rank count (log 2 axis): parallel efficiency
/// (0 to 1.2, grid every 0.25) and bytes per rank and iteration (log axis).
/// Strong scaling is blue, weak orange; hollow marks are oversubscribed runs.
/// On the right, filled marks are counted halo bytes, the thin line the halo
/// model, red the whole-object allreduce of the peer tools. Each panel has
/// its title, axis labels and a legend.
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

    public static func render(strong: [Point], weak: [Point], panelWidth: Int = 420, height: Int = 340) -> Raster {
        var image = Raster(width: 2 * panelWidth, height: height, rgb: true, fill: 255)
        let all = strong + weak
        let maxRanks = max(2, all.map(\.ranks).max() ?? 2)
        let top = 26, bottom = height - 36
        let lastPower = Int(log2(Double(maxRanks)).rounded(.up))
        func xOf(_ ranks: Int, _ left: Int, _ right: Int) -> Int {
            left + Int((log2(Double(ranks)) / Double(lastPower) * Double(right - left)).rounded())
        }
        func axes(_ left: Int, _ right: Int, title: String, yLabel: String, labelX: Int) {
            image.line(bottom, left, bottom, right, black)
            image.line(top, left, bottom, left, black)
            for p in 0...lastPower {
                let x = xOf(1 << p, left, right)
                image.line(bottom, x, bottom + 3, x, black)
                image.text("\(1 << p)", y: bottom + 5, x: x, align: .centre)
            }
            image.text(title, y: 6, x: (left + right) / 2, align: .centre)
            image.text("MPI ranks (log 2 scale)", y: bottom + 20, x: (left + right) / 2, align: .centre)
            image.text(yLabel, y: (top + bottom) / 2, x: labelX, align: .centre, vertical: true)
        }

        // Efficiency.
        let l1 = 52, r1 = panelWidth - 14
        axes(l1, r1, title: "Parallel efficiency", yLabel: "efficiency (1 = ideal)", labelX: 4)
        func yEff(_ e: Double) -> Int { bottom - Int((min(max(e, 0), 1.2) / 1.2 * Double(bottom - top)).rounded()) }
        for k in 1...4 {
            let e = Double(k) * 0.25, y = yEff(e)
            image.line(y, l1 + 1, y, r1, grid)
            image.text(k == 4 ? "1" : String(format: "%.2f", e), y: y - FixedFont.ascent / 2 - 1, x: l1 - 5, align: .right)
        }
        for (points, colour) in [(strong, strongColour), (weak, weakColour)] {
            let marks = points.sorted { $0.ranks < $1.ranks }.compactMap { p in p.efficiency.map { (yEff($0), xOf(p.ranks, l1, r1), p.oversubscribed) } }
            draw(&image, marks, colour: colour, connect: true)
        }
        var efficiencyLegend: [(name: String, colour: (UInt8, UInt8, UInt8), mark: Raster.Mark)] = []
        if !strong.isEmpty { efficiencyLegend.append(("strong scaling", strongColour, .square)) }
        if !weak.isEmpty { efficiencyLegend.append(("weak scaling", weakColour, .square)) }
        if all.contains(where: \.oversubscribed) { efficiencyLegend.append(("oversubscribed", black, .hollowSquare)) }

        // Bytes per rank and iteration.
        let l2 = panelWidth + 60, r2 = 2 * panelWidth - 14
        axes(l2, r2, title: "Bytes sent per rank and iteration", yLabel: "bytes (log scale)", labelX: panelWidth + 4)
        image.legend(efficiencyLegend, top: bottom - 6 - (FixedFont.height + 3) * efficiencyLegend.count - 4, right: r1 - 4)
        let values = all.flatMap { [$0.haloBytes, $0.modelHaloBytes, $0.allreduceBytes] }.filter { $0 > 0 }
        guard let lowest = values.min(), let highest = values.max() else {
            image.text("no traffic measured", y: (top + bottom) / 2, x: (l2 + r2) / 2, align: .centre)
            return image
        }
        let lo = log10(lowest).rounded(.down), hi = max(log10(highest).rounded(.up), lo + 1)
        func yBytes(_ v: Double) -> Int { bottom - Int(((log10(v) - lo) / (hi - lo) * Double(bottom - top)).rounded()) }
        for d in Int(lo)...Int(hi) {
            let y = yBytes(pow(10, Double(d)))
            image.line(y, l2 + 1, y, r2, grid)
            image.text("1e\(d)", y: y - FixedFont.ascent / 2 - 1, x: l2 - 5, align: .right)
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
        var bytesLegend: [(name: String, colour: (UInt8, UInt8, UInt8), mark: Raster.Mark)] = []
        if all.contains(where: { $0.haloBytes > 0 }) { bytesLegend.append(("halo exchange, counted", black, .square)) }
        if all.contains(where: { $0.modelHaloBytes > 0 }) { bytesLegend.append(("halo exchange, model", black, .line)) }
        if all.contains(where: { $0.allreduceBytes > 0 }) { bytesLegend.append(("whole-object allreduce", allreduceColour, .line)) }
        image.legend(bytesLegend, top: top + 4, right: r2 - 4)
        return image
    }

    static func draw(_ image: inout Raster, _ points: [(Int, Int, Bool)], colour: (UInt8, UInt8, UInt8), connect: Bool,
                     marks: Bool = true) {
        if connect {
            for (a, b) in zip(points, points.dropFirst()) { image.line(a.0, a.1, b.0, b.1, colour) }
        }
        guard marks else { return }
        for (y, x, hollow) in points { image.square(y, x, colour, hollow: hollow) }
    }
}
