import Foundation

/// Gaussian elimination with partial pivoting for a small dense system.
func solve(_ a: [Double], _ b: [Double], _ n: Int) -> [Double]? {
    var m = a, v = b
    for col in 0..<n {
        var pivot = col
        for r in col..<n where abs(m[r * n + col]) > abs(m[pivot * n + col]) { pivot = r }
        guard abs(m[pivot * n + col]) > 1e-300 else { return nil }
        if pivot != col {
            for k in 0..<n { m.swapAt(col * n + k, pivot * n + k) }
            v.swapAt(col, pivot)
        }
        for r in (col + 1)..<n {
            let f = m[r * n + col] / m[col * n + col]
            for k in col..<n { m[r * n + k] -= f * m[col * n + k] }
            v[r] -= f * v[col]
        }
    }
    var x = [Double](repeating: 0, count: n)
    for r in stride(from: n - 1, through: 0, by: -1) {
        var s = v[r]
        for k in (r + 1)..<n { s -= m[r * n + k] * x[k] }
        x[r] = s / m[r * n + r]
    }
    return x
}
