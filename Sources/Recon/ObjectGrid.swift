import Foundation

/// The object's pixel grid for a scan: sample-plane pixels of
/// lambda z / (M dx), frames' windows placed by their probe positions with
/// a margin all round. The simulator and the solver share it, so a
/// reconstruction lands on the simulation's truth grid.
public struct ObjectGrid: Sendable {
    public let pixelSize: Double
    public let frameSize: Int
    public let height: Int
    public let width: Int
    /// Window corner of each frame, fractional pixels (the truth's positions).
    public let exactCorners: [(y: Double, x: Double)]

    public static let margin = 4.0

    public init(positions: [(y: Double, x: Double)], pixelSize: Double, frameSize: Int) {
        self.pixelSize = pixelSize
        self.frameSize = frameSize
        let ys = positions.map { $0.y / pixelSize }, xs = positions.map { $0.x / pixelSize }
        let minY = ys.min() ?? 0, minX = xs.min() ?? 0
        height = Int(((ys.max() ?? 0) - minY).rounded(.up) + Double(frameSize) + 2 * ObjectGrid.margin)
        width = Int(((xs.max() ?? 0) - minX).rounded(.up) + Double(frameSize) + 2 * ObjectGrid.margin)
        exactCorners = zip(ys, xs).map { ($0 - minY + ObjectGrid.margin, $1 - minX + ObjectGrid.margin) }
    }

    /// Corners rounded down to whole pixels, as the solver places its windows
    /// (and the simulator its object windows).
    public var corners: [(y: Int, x: Int)] {
        exactCorners.map { (Int($0.y.rounded(.down)), Int($0.x.rounded(.down))) }
    }

    /// Exact corner minus whole-pixel corner, in [0, 1): the sub-pixel shift
    /// of the probe in each frame's model.
    public var offsets: [(y: Double, x: Double)] {
        exactCorners.map { ($0.y - $0.y.rounded(.down), $0.x - $0.x.rounded(.down)) }
    }

    /// The solver's windows when it models offsets to 1/`steps` of a pixel:
    /// a frame whose offset rounds up to a whole pixel takes the next
    /// pixel's window and no shift (rather than the probe moved a whole
    /// pixel round the frame), so offsets round to 0..<steps and there are
    /// at most steps^2 shifted probes, not (steps + 1)^2. Offsets lie in
    /// [-1/(2 steps), 1 - 1/(2 steps)). With steps 0, the plain `corners`
    /// and `offsets`.
    public func windows(subpixelSteps steps: Int) -> (corners: [(y: Int, x: Int)], offsets: [(y: Double, x: Double)]) {
        guard steps > 0 else { return (corners, offsets) }
        let half = 0.5 / Double(steps)
        let corners: [(y: Int, x: Int)] = exactCorners.map { exact in
            let y = (exact.y + half).rounded(.down), x = (exact.x + half).rounded(.down)
            return (Int(y), Int(x))
        }
        let offsets: [(y: Double, x: Double)] = zip(exactCorners, corners).map { exact, corner in
            (exact.y - Double(corner.y), exact.x - Double(corner.x))
        }
        return (corners, offsets)
    }
}

extension ObjectGrid: Equatable {
    public static func == (a: ObjectGrid, b: ObjectGrid) -> Bool {
        a.pixelSize == b.pixelSize && a.frameSize == b.frameSize && a.height == b.height && a.width == b.width
            && a.exactCorners.elementsEqual(b.exactCorners) { $0.y == $1.y && $0.x == $1.x }
    }
}
