import Foundation

/// The frames one rank reconstructs from.
public struct LocalFrames: Sendable {
    /// Global frame indices, in scan order.
    public var indices: [Int]
    /// Window corners on the object grid (global pixels).
    public var corners: [(y: Int, x: Int)]
    /// Exact position minus the corner, in pixels (within one pixel): the
    /// probe is shifted by this much in the model of the frame.
    public var offsets: [(y: Double, x: Double)]
    /// sqrt(measured intensity), zero frequency at index 0 (not centred), count x M x M.
    public var amplitudes: [Float]
    /// 1 for measured frames, 0 for frames not yet measured.
    public var weights: [Float]

    public init(indices: [Int], corners: [(y: Int, x: Int)], offsets: [(y: Double, x: Double)]? = nil,
                amplitudes: [Float], weights: [Float]) {
        self.indices = indices
        self.corners = corners
        self.offsets = offsets ?? corners.map { _ in (0, 0) }
        self.amplitudes = amplitudes
        self.weights = weights
    }

    public var count: Int { indices.count }

    /// The frames in the order of a Hilbert curve through their window
    /// corners (cells of `cell` pixels, ties in scan order): consecutive
    /// frames then overlap on the object, so its rows stay in cache from one
    /// frame to the next, where a spiral's scan order jumps across it. The
    /// curve is fixed on the object grid, so any subset of the frames (one
    /// rank's, those measured so far) keeps their order in the whole scan.
    public func localityOrder(cell: Int) -> [Int] {
        let cell = max(1, cell)
        let keys = corners.map { Self.hilbertIndex(side: 1 << 21, y: max(0, $0.y) / cell, x: max(0, $0.x) / cell) }
        return corners.indices.sorted { (keys[$0], $0) < (keys[$1], $1) }
    }

    /// The order the solver's passes visit frames: those whose windows
    /// (`size` pixels square) meet any of `shared` first, then the rest, each
    /// part in `localityOrder`. The sums over the shared boxes are then
    /// complete early, and their exchange runs while the rest are updated.
    /// Also returns how many frames come first.
    public func visitOrder(cell: Int, size: Int, shared: [Box]) -> (order: [Int], meetingShared: Int) {
        let meets = corners.map { c in
            shared.contains { !$0.intersection(Box(y0: c.y, x0: c.x, y1: c.y + size, x1: c.x + size)).isEmpty }
        }
        let curve = localityOrder(cell: cell)
        let first = curve.filter { meets[$0] }
        return (first + curve.filter { !meets[$0] }, first.count)
    }

    /// Distance along the Hilbert curve filling a side x side grid (side a power of 2).
    static func hilbertIndex(side: Int, y: Int, x: Int) -> Int {
        var (x, y, d) = (x, y, 0)
        var s = side / 2
        while s > 0 {
            let rx = x & s > 0 ? 1 : 0, ry = y & s > 0 ? 1 : 0
            d += s * s * ((3 * rx) ^ ry)
            // Rotate the quadrant so the curve continues.
            if ry == 0 {
                if rx == 1 { x = side - 1 - x; y = side - 1 - y }
                (x, y) = (y, x)
            }
            s /= 2
        }
        return d
    }
}
