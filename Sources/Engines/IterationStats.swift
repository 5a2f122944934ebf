import Foundation
import Recon

/// What one iteration measured (identical on every rank).
public struct IterationStats: Codable, Sendable, Equatable {
    public var iteration: Int
    /// sum (|F psi| - sqrt(I))^2 / sum I over valid pixels of measured frames.
    public var fourierError: Double
    public var seconds: Double

    public init(iteration: Int, fourierError: Double, seconds: Double) {
        self.iteration = iteration
        self.fourierError = fourierError
        self.seconds = seconds
    }
}

/// Where this rank's iterations spent their time, summed over the
/// iterations run while `PtychoModel.profiling` was on.
public struct IterationProfile: Codable, Sendable, Equatable {
    /// 2 P O - psi, and RAAR's copies of psi.
    public var reflection = 0.0
    /// The forward and inverse transforms of the Fourier update and of the
    /// probe step's sub-pixel shifts.
    public var transforms = 0.0
    /// The Fourier magnitude projection and its misfit.
    public var projection = 0.0
    /// The exit-wave update with the object sums.
    public var exitUpdate = 0.0
    /// Completing the object sums with the overlapping ranks', and the division.
    public var objectUpdate = 0.0
    /// The probe sums, their reduction over ranks, the step and the shifted
    /// copies, less their transforms.
    public var probeUpdate = 0.0
    /// The probe step's single-frame transforms, counted.
    public var probeStepTransforms = 0
    public var iterations = 0

    public init() {}
}

/// Laps of a monotonic clock, read only when profiling is on.
struct SectionClock {
    private let on: Bool
    private var last: UInt64

    init(on: Bool) {
        self.on = on
        last = on ? Self.now() : 0
    }

    /// Adds the seconds since the last lap to `total`.
    @inline(__always)
    mutating func lap(_ total: inout Double) {
        guard on else { return }
        let t = Self.now()
        total += Double(t &- last) * 1e-9
        last = t
    }

    private static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}
