import Foundation

/// The projection algorithms, as small variations on one engine.
public enum Algorithm: String, Codable, Sendable, CaseIterable {
    /// Difference map (Thibault et al. 2009).
    case dm
    /// Relaxed averaged alternating reflections (Luke 2005).
    case raar
}

/// Everything that steers a reconstruction.
public struct EngineOptions: Codable, Equatable, Sendable {
    public var algorithm: Algorithm = .dm
    /// RAAR's relaxation (1 gives the difference map).
    public var beta: Double = 0.75
    public var iterations: Int = 100
    /// First iteration (0-based) that also updates the probe.
    public var probeUpdateStart: Int = 2
    /// Object division: O = (sum P* psi + eps) / (sum |P|^2 + eps), eps = this x max(sum |P|^2).
    public var objectRegularization: Double = 1e-3
    /// Probe division: P = sum O* psi / (sum |O|^2 + eps), eps = this x max(sum |O|^2).
    public var probeRegularization: Double = 1e-3
    /// Probe support: a disc of this radius, as a fraction of the frame size (nil: none).
    public var probeSupport: Double? = nil
    /// Frames transformed together.
    public var batch: Int = 8
    /// How far the Fourier projection fits each frame (see `PowerBound`).
    public var powerBound: PowerBound = .poisson(1)
    /// Sub-pixel positions are modelled to 1/this of a pixel by shifting the
    /// probe (see `PtychoEngine`); 0 rounds positions to whole pixels.
    public var subpixelSteps: Int = 4
    /// How FFTW picks its algorithms (see `FFTPlanning`).
    public var fftPlanning: FFTPlanning = .measure
    /// FFTW wisdom kept in this file and shared by the ranks (see `FFTWisdom`); nil: none.
    public var fftWisdom: String? = nil

    public init() {}

    public func problems() -> [String] {
        var out: [String] = []
        if iterations < 0 { out.append("iterations must be at least 0, got \(iterations)") }
        if !(beta > 0 && beta <= 1) { out.append("beta must be in (0, 1], got \(beta)") }
        if probeUpdateStart < 0 { out.append("probe update start must be at least 0, got \(probeUpdateStart)") }
        if !(objectRegularization > 0) || !(probeRegularization > 0) { out.append("regularizations must be positive") }
        if let s = probeSupport, !(s > 0 && s <= 1) { out.append("probe support must be in (0, 1] of the frame, got \(s)") }
        if !(0...64).contains(subpixelSteps) { out.append("sub-pixel steps must be in 0...64, got \(subpixelSteps)") }
        if batch < 1 { out.append("batch must be at least 1, got \(batch)") }
        switch powerBound {
        case .none: break
        case .relative(let r): if !(r > 0 && r < 1) { out.append("the relative power bound must be in (0, 1), got \(r)") }
        case .poisson(let k): if !(k > 0 && k <= 4) { out.append("the Poisson power bound factor must be in (0, 4], got \(k)") }
        }
        return out
    }
}

/// FFTW's planning. `measure` times candidate algorithms in each process and
/// is the fastest, but may choose differently from run to run and rank to
/// rank, and a different algorithm rounds differently, which the iterations
/// amplify: identical runs differ by up to 1e-2 relative in the object after
/// 100 iterations. `estimate` chooses by a fixed heuristic, so identical
/// inputs give bit-identical results; wisdom (`fftWisdom`) keeps measure's
/// choices, so runs that share it are bit-identical too.
public enum FFTPlanning: String, Codable, Equatable, Sendable, CaseIterable {
    case measure, estimate
}

/// The power bound of the Fourier projection: a frame whose amplitude misfit
/// sum over valid pixels of (|F psi| - sqrt(I))^2 is below the bound is left
/// as it is, and a larger misfit is only reduced to the bound, so the exit
/// waves do not fit noise and drift away from the overlap constraint.
public enum PowerBound: Codable, Equatable, Sendable, CustomStringConvertible {
    /// Exact projection, for noise-free data.
    case none
    /// PtyPy's fourier_relax_factor r: 0.25 r^2 x the frame's photons.
    case relative(Double)
    /// k x the misfit Poisson noise alone would leave: the sum over pixels of
    /// E(sqrt(X) - sqrt(lambda))^2 for X ~ Poisson(lambda), lambda the
    /// measured count. It follows the photon count, where a fixed fraction
    /// fits noise at low counts and stops short at high counts.
    case poisson(Double)

    /// Parses "none", "relax:R" or "poisson:K".
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count == 2 ? Double(parts[1]) : nil) {
        case ("none", _) where parts.count == 1: self = .none
        case ("relax", let v?): self = .relative(v)
        case ("poisson", let v?): self = .poisson(v)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .relative(let r): "relax:\(r)"
        case .poisson(let k): "poisson:\(k)"
        }
    }
}

/// E(sqrt(X) - sqrt(lambda))^2 for X ~ Poisson(lambda): 2 lambda - 2 lambda^1.5
/// for small lambda, 1/4 + 7/(64 lambda) for large, tabulated in between.
public struct ExpectedPoissonMisfit: Sendable {
    private static let step = 0.0625
    private static let limit = 64.0
    private let table: [Double]

    public init() {
        table = stride(from: 0.0, through: Self.limit, by: Self.step).map { lambda in
            guard lambda > 0 else { return 0 }
            // Sum over counts within 12 standard deviations, pmf by recurrence in log space.
            let root = lambda.squareRoot()
            let top = Int(lambda + 12 * root + 12)
            var logP = -lambda, sum = 0.0
            for k in 0...top {
                if k > 0 { logP += log(lambda) - log(Double(k)) }
                let d = Double(k).squareRoot() - root
                sum += exp(logP) * d * d
            }
            return sum
        }
    }

    public func callAsFunction(_ lambda: Double) -> Double {
        guard lambda > 0 else { return 0 }
        guard lambda >= Self.step else { return 2 * lambda - 2 * lambda * lambda.squareRoot() }
        guard lambda < Self.limit else { return 0.25 + 7 / (64 * lambda) }
        let x = lambda / Self.step, i = Int(x), f = x - Double(i)
        return table[i] * (1 - f) + table[i + 1] * f
    }
}
