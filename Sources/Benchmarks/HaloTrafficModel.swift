import Recon

/// Bytes per rank and iteration that the object sums cost on the network,
/// for this solver's halo exchange and for the whole-object allreduce that
/// PtyPy, SHARP and Pty-chi perform.
///
/// Each object pixel carries a complex numerator and a real denominator
/// (12 bytes). A rank sends each peer the part of its region that the
/// peer's region shares.
public enum HaloTrafficModel {
    public static let bytesPerPixel = 12

    /// Exactly what the engine sends for `layout`: the mean over ranks of the
    /// bytes in their overlaps, and the busiest rank's.
    public static func layoutBytes(_ layout: TileLayout) -> (mean: Double, max: Double) {
        var total = 0, busiest = 0
        for r in 0..<layout.ranks {
            let pixels = layout.overlaps(of: r).reduce(0) { $0 + $1.box.area }
            total += pixels
            busiest = max(busiest, pixels)
        }
        return (Double(total * bytesPerPixel) / Double(layout.ranks), Double(busiest * bytesPerPixel))
    }

    /// The idealized grid: rows x columns tiles of equal size, each region the
    /// tile grown by half a frame on every side (a frame centred on the tile's
    /// edge reaches that far) and clipped to the object. Mean bytes per rank.
    public static func uniformGridBytes(objectHeight: Int, objectWidth: Int, frameSize: Int, rows: Int, columns: Int) -> Double {
        let half = Double(frameSize) / 2
        func span(_ i: Int, _ parts: Int, _ length: Int) -> (Double, Double) {
            let a = Double(length) * Double(i) / Double(parts), b = Double(length) * Double(i + 1) / Double(parts)
            return (max(0, a - half), min(Double(length), b + half))
        }
        let ys = (0..<rows).map { span($0, rows, objectHeight) }, xs = (0..<columns).map { span($0, columns, objectWidth) }
        func overlap(_ a: (Double, Double), _ b: (Double, Double)) -> Double { max(0, min(a.1, b.1) - max(a.0, b.0)) }
        // Overlaps factor into rows and columns, so sum those first.
        var rowSum = 0.0, columnSum = 0.0, rowSelf = 0.0, columnSelf = 0.0
        for i in 0..<rows { for k in 0..<rows { rowSum += overlap(ys[i], ys[k]) }; rowSelf += ys[i].1 - ys[i].0 }
        for j in 0..<columns { for l in 0..<columns { columnSum += overlap(xs[j], xs[l]) }; columnSelf += xs[j].1 - xs[j].0 }
        // All ordered pairs of tiles minus each tile with itself.
        let pairs = rowSum * columnSum - rowSelf * columnSelf
        return pairs * Double(bytesPerPixel) / Double(rows * columns)
    }

    /// Bytes each rank sends in a bandwidth-optimal allreduce (ring or
    /// Rabenseifner) of the whole object's sums: 2 (N-1)/N of the payload.
    public static func wholeObjectAllreduceBytes(objectHeight: Int, objectWidth: Int, ranks: Int) -> Double {
        guard ranks > 1 else { return 0 }
        return 2 * Double(ranks - 1) / Double(ranks) * Double(objectHeight * objectWidth * bytesPerPixel)
    }
}
