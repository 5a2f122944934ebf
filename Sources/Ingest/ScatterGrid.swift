import Foundation

/// Scattered scan positions drawn on a regular grid: a cell holding
/// positions takes their mean; an empty cell inside the scanned area (the
/// positions' convex hull, widened by half a cell) takes its nearest
/// position's value, so jittered rasters and spirals show no holes; cells
/// outside the scanned area are NaN.
struct ScatterGrid {
    let height: Int, width: Int
    /// Per cell: the positions binned there, or the nearest one's index (-1 outside the hull).
    private let members: [[Int]]
    private let nearest: [Int]

    init(positions: [(y: Double, x: Double)], step: Double, originY: Double, originX: Double, height: Int, width: Int) {
        (self.height, self.width) = (height, width)
        var members = [[Int]](repeating: [], count: height * width)
        for (i, p) in positions.enumerated() {
            let gy = max(0, min(height - 1, Int(((p.y - originY) / step).rounded())))
            let gx = max(0, min(width - 1, Int(((p.x - originX) / step).rounded())))
            members[gy * width + gx].append(i)
        }
        let hull = Self.convexHull(positions)
        var nearest = [Int](repeating: -1, count: height * width)
        for cell in members.indices where members[cell].isEmpty {
            let c = (y: originY + Double(cell / width) * step, x: originX + Double(cell % width) * step)
            guard Self.distanceOutside(c, hull: hull) <= step / 2 else { continue }
            nearest[cell] = Self.closest(to: c, members: members, height: height, width: width, step: step,
                                         originY: originY, originX: originX, positions: positions)
        }
        self.members = members
        self.nearest = nearest
    }

    /// The image of per-position `values`, row-major.
    func image(_ values: [Double]) -> [Double] {
        (0..<(height * width)).map { cell in
            let m = members[cell]
            if !m.isEmpty { return m.reduce(0) { $0 + values[$1] } / Double(m.count) }
            return nearest[cell] >= 0 ? values[nearest[cell]] : .nan
        }
    }

    /// The nearest position, searched ring by ring of cells outwards (a
    /// ring r cells away holds nothing nearer than (r - 1) steps).
    private static func closest(to c: (y: Double, x: Double), members: [[Int]], height: Int, width: Int, step: Double,
                                originY: Double, originX: Double, positions: [(y: Double, x: Double)]) -> Int {
        let cy = Int(((c.y - originY) / step).rounded()), cx = Int(((c.x - originX) / step).rounded())
        var best = -1, bestDistance = Double.infinity
        for r in 0...max(height, width) {
            if best >= 0 && Double(r - 1) * step > bestDistance.squareRoot() { break }
            for gy in (cy - r)...(cy + r) where gy >= 0 && gy < height {
                for gx in (cx - r)...(cx + r) where gx >= 0 && gx < width && max(abs(gy - cy), abs(gx - cx)) == r {
                    for i in members[gy * width + gx] {
                        let d = (positions[i].y - c.y) * (positions[i].y - c.y) + (positions[i].x - c.x) * (positions[i].x - c.x)
                        if d < bestDistance { (best, bestDistance) = (i, d) }
                    }
                }
            }
        }
        return best
    }

    /// Counter-clockwise hull (Andrew's monotone chain); fewer than 3 points for a degenerate scan.
    static func convexHull(_ points: [(y: Double, x: Double)]) -> [(y: Double, x: Double)] {
        let p = points.sorted { $0.x != $1.x ? $0.x < $1.x : $0.y < $1.y }
        guard p.count > 2 else { return p }
        func cross(_ o: (y: Double, x: Double), _ a: (y: Double, x: Double), _ b: (y: Double, x: Double)) -> Double {
            (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
        }
        var lower: [(y: Double, x: Double)] = [], upper: [(y: Double, x: Double)] = []
        for q in p {
            while lower.count >= 2 && cross(lower[lower.count - 2], lower[lower.count - 1], q) <= 0 { lower.removeLast() }
            lower.append(q)
        }
        for q in p.reversed() {
            while upper.count >= 2 && cross(upper[upper.count - 2], upper[upper.count - 1], q) <= 0 { upper.removeLast() }
            upper.append(q)
        }
        return Array(lower.dropLast() + upper.dropLast())
    }

    /// 0 inside the hull, else the distance to it.
    static func distanceOutside(_ c: (y: Double, x: Double), hull: [(y: Double, x: Double)]) -> Double {
        guard !hull.isEmpty else { return .infinity }
        var inside = hull.count > 2, nearest = Double.infinity
        for k in hull.indices {
            let a = hull[k], b = hull[(k + 1) % hull.count]
            let ex = b.x - a.x, ey = b.y - a.y
            // Counter-clockwise: a point right of any edge is outside.
            if ex * (c.y - a.y) - ey * (c.x - a.x) < 0 { inside = false }
            let length = ex * ex + ey * ey
            let t = length > 0 ? max(0, min(1, ((c.x - a.x) * ex + (c.y - a.y) * ey) / length)) : 0
            let dx = a.x + t * ex - c.x, dy = a.y + t * ey - c.y
            nearest = min(nearest, (dx * dx + dy * dy).squareRoot())
        }
        return inside ? 0 : nearest
    }
}
