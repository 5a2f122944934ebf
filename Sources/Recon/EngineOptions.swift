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
    /// Fourier relaxation r: a frame whose amplitude misfit sum (|F| - sqrt(I))^2
    /// is below 0.25 r^2 x its photons is left as it is, and a larger misfit is
    /// only reduced to that bound (PtyPy's power bound), so noise is not fitted
    /// and inconsistent data do not drive the exit waves away. 0: exact projection.
    public var fourierRelax: Double = 0.05

    public init() {}

    public func problems() -> [String] {
        var out: [String] = []
        if iterations < 0 { out.append("iterations must be at least 0, got \(iterations)") }
        if !(beta > 0 && beta <= 1) { out.append("beta must be in (0, 1], got \(beta)") }
        if probeUpdateStart < 0 { out.append("probe update start must be at least 0, got \(probeUpdateStart)") }
        if !(objectRegularization > 0) || !(probeRegularization > 0) { out.append("regularizations must be positive") }
        if let s = probeSupport, !(s > 0 && s <= 1) { out.append("probe support must be in (0, 1] of the frame, got \(s)") }
        if batch < 1 { out.append("batch must be at least 1, got \(batch)") }
        if !(fourierRelax >= 0 && fourierRelax < 1) { out.append("Fourier relaxation must be in [0, 1), got \(fourierRelax)") }
        return out
    }
}
