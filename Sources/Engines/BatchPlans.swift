import Recon
import SwiftFFTW

/// An engine's in-place, unnormalized transforms of `batch` frames at a
/// time, and of the shorter batch a rank's last frames make, each size
/// planned once.
final class BatchPlans {
    let batch: Int
    private let frameSize: Int
    private let rigor: FFTPlan2D.Rigor
    private var plans: [Int: (forward: FFTPlan2D, inverse: FFTPlan2D)] = [:]

    init(frameSize m: Int, batch: Int, rigor: FFTPlan2D.Rigor) throws {
        self.batch = batch
        frameSize = m
        self.rigor = rigor
        _ = try callAsFunction(batch)
    }

    /// The plans for `count` frames.
    func callAsFunction(_ count: Int) throws -> (forward: FFTPlan2D, inverse: FFTPlan2D) {
        if let p = plans[count] { return p }
        let m = frameSize
        let p = (try FFTPlan2D(height: m, width: m, batch: count, direction: .forward, inPlace: true, rigor: rigor),
                 try FFTPlan2D(height: m, width: m, batch: count, direction: .inverse, inPlace: true, rigor: rigor))
        plans[count] = p
        return p
    }
}
