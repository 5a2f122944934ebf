import Numerics

/// The low-order shapes x^a y^b, in order of total degree (1, x, y, x^2,
/// xy, y^2, ...), that the extra modes of a partially coherent beam are
/// made from: the simulator weights the zone plate's pupil by them, the
/// solver its first probe.
public enum ModeShapes {
    /// The exponents (a, b) of shape k.
    public static func exponents(_ k: Int) -> (a: Int, b: Int) {
        var degree = 0, index = k
        while index > degree { index -= degree + 1; degree += 1 }
        return (degree - index, index)
    }

    /// v -= (<u, v> / <u, u>) u: v made orthogonal to u (Gram-Schmidt's step).
    public static func removeProjection(of u: [Complex<Double>], from v: inout [Complex<Double>]) {
        var overlap = Complex<Double>.zero, norm = 0.0
        for i in v.indices { overlap = overlap + u[i].conjugate * v[i]; norm += u[i].lengthSquared }
        guard norm > 0 else { return }
        let c = overlap.divided(by: norm)
        for i in v.indices { v[i] = v[i] - u[i] * c }
    }
}

extension Array where Element == Array2D<Complex<Float>> {
    /// Each field's share of their summed intensity: probe modes' powers.
    public var powerFractions: [Double] {
        let powers = map(\.totalIntensity), total = powers.reduce(0, +)
        return powers.map { total > 0 ? $0 / total : 0 }
    }
}
