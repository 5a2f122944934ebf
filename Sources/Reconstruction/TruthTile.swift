import CXI
import Foundation
import Numerics
import Recon
import SwiftMPI

/// A simulation's true object over one rank's tile, and the illuminated
/// part of it, so a running solve can be judged against the truth without
/// any rank holding the whole object.
public struct TruthTile {
    let values: [Complex<Float>]
    let region: [Bool]

    /// nil when `reader` has no truth, or one on another grid (other margins or
    /// rounding): such a truth is not comparable pixel by pixel.
    public init?(reader: CXIReader, height: Int, width: Int, corners: [(y: Int, x: Int)], tile: Box) throws {
        guard reader.hasTruth, try reader.shape(of: CXIPaths.truth + "/object") == [height, width] else { return nil }
        values = try reader.truthObject(in: tile)
        let region = ObjectMetrics.illuminated(probe: try reader.truthProbe(), corners: corners, height: height, width: width)
        self.region = (tile.y0..<tile.y1).flatMap { y in (tile.x0..<tile.x1).map { region[y * width + $0] } }
    }

    /// Collective: the NRMSE of the object over all ranks' tiles with only the global complex
    /// factor removed: sum |g O - T|^2 = sum |T|^2 - |sum T O*|^2 / sum |O|^2.
    public func nrmse(_ object: [Complex<Float>], comm: Communicator) throws -> Double {
        var sums = [0.0, 0.0, 0.0, 0.0]  // Re and Im of sum T O*, sum |O|^2, sum |T|^2
        for i in object.indices where region[i] {
            let t = values[i], v = object[i]
            sums[0] += Double(t.real * v.real + t.imaginary * v.imaginary)
            sums[1] += Double(t.imaginary * v.real - t.real * v.imaginary)
            sums[2] += Double(v.lengthSquared)
            sums[3] += Double(t.lengthSquared)
        }
        try sums.withUnsafeMutableBufferPointer { try comm.sum($0) }
        guard sums[2] > 0, sums[3] > 0 else { return .nan }
        return max(0, (sums[3] - (sums[0] * sums[0] + sums[1] * sums[1]) / sums[2]) / sums[3]).squareRoot()
    }
}
