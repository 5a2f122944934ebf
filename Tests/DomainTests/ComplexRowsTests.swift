import Foundation
import Numerics
@testable import Engines
@testable import Recon
import Testing

/// The engine's vector passes give, bit for bit, what the scalar formula of
/// each pixel gives: widths below, at and between multiples of the vector
/// width, so both the vector body and the scalar tail are compared.
@Suite struct ComplexRowsTests {
    static let widths = [3, 8, 13, 16, 100]

    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed, stream: 1)
        return (0..<count).map { _ in Float(rng.normal()) }
    }

    /// One element of the scalar model: (re, im) of array a at complex index i.
    static func c(_ a: [Float], _ i: Int) -> (re: Float, im: Float) { (a[2 * i], a[2 * i + 1]) }

    @Test(arguments: widths) func productsAndReflection(count: Int) {
        let o = Self.values(2 * count, seed: 1), p = Self.values(2 * count, seed: 2), psi = Self.values(2 * count, seed: 3)
        var product = [Float](repeating: 0, count: 2 * count), reflection = product, difference = psi
        ComplexRows.product(o, p, into: &product, count: count)
        ComplexRows.reflection(o, p, &difference, into: &reflection, count: count)
        for i in 0..<count {
            let (ore, oim) = Self.c(o, i), (pre, pim) = Self.c(p, i)
            let fre = pre * ore - pim * oim, fim = pre * oim + pim * ore
            #expect(product[2 * i] == fre && product[2 * i + 1] == fim, "P O at \(i) of \(count)")
            let dre = psi[2 * i] - fre, dim = psi[2 * i + 1] - fim
            #expect(difference[2 * i] == dre && difference[2 * i + 1] == dim, "psi - P O at \(i) of \(count)")
            #expect(reflection[2 * i] == fre - dre && reflection[2 * i + 1] == fim - dim, "2 P O - psi at \(i) of \(count)")
        }
    }

    @Test(arguments: widths) func exitWaveUpdatesAndObjectSums(count: Int) {
        let p = Self.values(2 * count, seed: 5), w = Self.values(2 * count, seed: 6)
        let q = Self.values(2 * count, seed: 7), psi0 = Self.values(2 * count, seed: 8), num0 = Self.values(2 * count, seed: 9)
        let den0 = Self.values(count, seed: 11)
        let scale: Float = 0.37, beta: Float = 0.7
        for raar in [false, true] {
            var psi = psi0, num = num0, den = den0
            if raar {
                ComplexRows.relaxedUpdate(p, &psi, projected: w, projectedExit: q, scale: scale, beta: beta,
                                          numerator: &num, denominator: &den, count: count)
            } else {
                ComplexRows.differenceMapUpdate(p, &psi, projected: w, scale: scale, numerator: &num, denominator: &den,
                                                count: count)
            }
            for i in 0..<count {
                // psi0 stands for psi - P O, as the reflection leaves it.
                let (pre, pim) = Self.c(p, i)
                var sre = psi0[2 * i] + w[2 * i] * scale
                var sim = psi0[2 * i + 1] + w[2 * i + 1] * scale
                if raar {
                    sre = beta * sre + (1 - beta) * q[2 * i] * scale
                    sim = beta * sim + (1 - beta) * q[2 * i + 1] * scale
                }
                #expect(psi[2 * i] == sre && psi[2 * i + 1] == sim, "psi at \(i) of \(count), RAAR \(raar)")
                #expect(num[2 * i] == num0[2 * i] + (pre * sre + pim * sim), "conj(P) psi at \(i) of \(count)")
                #expect(num[2 * i + 1] == num0[2 * i + 1] + (pre * sim - pim * sre), "conj(P) psi at \(i) of \(count)")
                #expect(den[i] == den0[i] + (pre * pre + pim * pim))
            }
        }
    }

    @Test(arguments: widths) func probeResiduals(count: Int) {
        let o = Self.values(2 * count, seed: 12), psi = Self.values(2 * count, seed: 13), num0 = Self.values(2 * count, seed: 14)
        let p = Self.values(2 * count, seed: 15), den0 = Self.values(count, seed: 16)
        var num = num0, den = den0
        ComplexRows.probeResiduals(o, psi, probe: p, numerator: &num, denominator: &den, count: count)
        for i in 0..<count {
            let (ore, oim) = Self.c(o, i), (pre, pim) = Self.c(p, i)
            let dre = psi[2 * i] - (ore * pre - oim * pim), dim = psi[2 * i + 1] - (ore * pim + oim * pre)
            #expect(num[2 * i] == num0[2 * i] + (ore * dre + oim * dim) && num[2 * i + 1] == num0[2 * i + 1] + (ore * dim - oim * dre),
                    "conj(O) (psi - O P) at \(i) of \(count)")
            #expect(den[i] == den0[i] + (ore * ore + oim * oim))
        }
    }

    @Test(arguments: widths) func probeResidualsOfFourFramesMatchFourPasses(count: Int) {
        let o = (0..<4).map { Self.values(2 * count, seed: 40 + UInt64($0)) }
        let psi = (0..<4).map { Self.values(2 * count, seed: 50 + UInt64($0)) }
        let p = Self.values(2 * count, seed: 62)
        var num = Self.values(2 * count, seed: 60), den = Self.values(count, seed: 61)
        var oneByOne = num, oneByOneDen = den
        for k in 0..<4 {
            ComplexRows.probeResiduals(o[k], psi[k], probe: p, numerator: &oneByOne, denominator: &oneByOneDen, count: count)
        }
        // Stable pointers to the eight rows.
        let rows = (o + psi).map { a -> UnsafePointer<Float> in
            let q = UnsafeMutablePointer<Float>.allocate(capacity: a.count)
            q.initialize(from: a, count: a.count)
            return UnsafePointer(q)
        }
        defer { rows.forEach { $0.deallocate() } }
        ComplexRows.probeResiduals((rows[0], rows[1], rows[2], rows[3]), (rows[4], rows[5], rows[6], rows[7]), probe: p,
                                   numerator: &num, denominator: &den, count: count)
        #expect(num == oneByOne, "numerators of \(count)")
        #expect(den == oneByOneDen, "denominators of \(count)")
    }

    @Test(arguments: widths) func rampedRows(count: Int) {
        let f = Self.values(2 * count, seed: 17), b = Self.values(2 * count, seed: 18), out0 = Self.values(2 * count, seed: 19)
        let a: (re: Float, im: Float) = (0.8, -0.6)
        for sign: Float in [1, -1] {
            for adding in [true, false] {
                var out = out0
                ComplexRows.ramped(f, a: a, b, sign: sign, into: &out, adding: adding, count: count)
                for i in 0..<count {
                    let bre = b[2 * i], bim = sign * b[2 * i + 1]
                    let rr = a.re * bre - a.im * bim, ri = a.re * bim + a.im * bre
                    let (fre, fim) = Self.c(f, i)
                    let re = fre * rr - fim * ri, im = fre * ri + fim * rr
                    let expected = adding ? (out0[2 * i] + re, out0[2 * i + 1] + im) : (re, im)
                    #expect(out[2 * i] == expected.0 && out[2 * i + 1] == expected.1,
                            "f a b at \(i) of \(count), sign \(sign), adding \(adding)")
                }
            }
        }
    }
}
