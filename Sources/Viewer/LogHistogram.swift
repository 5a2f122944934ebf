import Foundation

/// Counts of pixel values on log-spaced bins, as photon counts span decades:
/// a fixed range (10^-3 to 10^7, ten bins a decade) so counts from frames
/// read one at a time add up; zero and below, values under and over the
/// range, and non-finite values are counted apart.
struct LogHistogram: Equatable {
    static let firstDecade = -3
    static let decades = 10
    static let perDecade = 10

    var counts = [Int](repeating: 0, count: decades * perDecade)
    var zeroOrBelow = 0
    var under = 0
    var over = 0
    var nonFinite = 0
    var pixels = 0
    /// Sum of the finite values (photons, or ADU for raw frames).
    var total = 0.0
    var maximum = -Double.infinity

    static var edges: [Double] {
        (0...(decades * perDecade)).map { pow(10, Double(firstDecade) + Double($0) / Double(perDecade)) }
    }

    mutating func add(_ values: UnsafeBufferPointer<Float>) {
        let low = Float(pow(10, Double(Self.firstDecade)))
        let scale = Float(Self.perDecade)
        let offset = Float(-Self.firstDecade * Self.perDecade)
        let bins = counts.count
        var sum = 0.0, top = maximum
        counts.withUnsafeMutableBufferPointer { c in
            for v in values {
                guard v.isFinite else { nonFinite += 1; continue }
                sum += Double(v)
                if Double(v) > top { top = Double(v) }
                if v <= 0 { zeroOrBelow += 1; continue }
                if v < low { under += 1; continue }
                let k = Int(log10(v) * scale + offset)
                if k >= bins { over += 1 } else { c[k] += 1 }
            }
        }
        pixels += values.count
        total += sum
        maximum = top
    }

    var json: [String: Any] {
        ["edges": Self.edges, "counts": counts, "zero_or_below": zeroOrBelow, "under": under, "over": over,
         "non_finite": nonFinite, "pixels": pixels, "total": total, "max": maximum.isFinite ? maximum : 0]
    }
}
