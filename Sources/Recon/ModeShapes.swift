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
}
