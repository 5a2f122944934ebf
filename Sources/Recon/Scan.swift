import Foundation

/// A scan pattern and how densely it samples.
public enum ScanPattern: Equatable, Sendable, Codable, CustomStringConvertible {
    case raster(rows: Int, columns: Int)
    /// A Fermat spiral (golden-angle phyllotaxis) of `points` positions.
    case spiral(points: Int)
    /// Concentric rings of 6k points at radius k * step, from the centre out.
    case rounds(points: Int)

    public var count: Int {
        switch self {
        case .raster(let r, let c): r * c
        case .spiral(let n), .rounds(let n): n
        }
    }

    public var description: String {
        switch self {
        case .raster(let r, let c): "raster:\(r)x\(c)"
        case .spiral(let n): "spiral:\(n)"
        case .rounds(let n): "rounds:\(n)"
        }
    }

    /// "40x40" or "raster:40x40", "spiral:400", "rounds:400".
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        let (kind, size) = parts.count == 2 ? (parts[0], parts[1]) : ("raster", parts.first ?? "")
        func fail() -> SimulationError {
            .invalid("scan '\(text)' is not one of RxC, raster:RxC, spiral:N, rounds:N (positive counts)")
        }
        switch kind {
        case "raster":
            let dims = size.split(separator: "x").compactMap { Int($0) }
            guard dims.count == 2, dims[0] > 0, dims[1] > 0 else { throw fail() }
            self = .raster(rows: dims[0], columns: dims[1])
        case "spiral", "rounds":
            guard let n = Int(size), n > 0 else { throw fail() }
            self = kind == "spiral" ? .spiral(points: n) : .rounds(points: n)
        default:
            throw fail()
        }
    }
}

/// A scan: pattern, step in m and random jitter (a fraction of the step).
public struct Scan: Codable, Equatable, Sendable {
    public var pattern: ScanPattern
    public var step: Double
    public var jitter: Double
    public var seed: UInt64

    public init(pattern: ScanPattern, step: Double, jitter: Double = 0, seed: UInt64 = 1) {
        self.pattern = pattern
        self.step = step
        self.jitter = jitter
        self.seed = seed
    }

    public func problems() -> [String] {
        var out: [String] = []
        if !(step > 0 && step.isFinite) { out.append("scan step must be a positive number of metres, got \(step)") }
        if !(jitter >= 0 && jitter <= 1) { out.append("jitter must be between 0 and 1 step, got \(jitter)") }
        return out
    }

    /// Probe positions on the sample, (y, x) in m, centred on the origin, in scan order.
    public func positions() -> [(y: Double, x: Double)] {
        var points: [(y: Double, x: Double)] = []
        switch pattern {
        case .raster(let rows, let columns):
            for r in 0..<rows {
                for c in 0..<columns {
                    points.append((Double(r) - Double(rows - 1) / 2, Double(c) - Double(columns - 1) / 2))
                }
            }
        case .spiral(let n):
            // Area per point pi c^2 equals a hexagonal cell of spacing 1.
            let c = (3.0.squareRoot() / (2 * Double.pi)).squareRoot()
            let golden = Double.pi * (3 - 5.0.squareRoot())
            for k in 0..<n {
                let r = c * Double(k).squareRoot(), theta = Double(k) * golden
                points.append((r * sin(theta), r * cos(theta)))
            }
        case .rounds(let n):
            points.append((0, 0))
            var ring = 1
            while points.count < n {
                let m = 6 * ring
                for i in 0..<m where points.count < n {
                    let theta = 2 * Double.pi * Double(i) / Double(m)
                    points.append((Double(ring) * sin(theta), Double(ring) * cos(theta)))
                }
                ring += 1
            }
        }
        var rng = SeededRandom(seed: seed, stream: 0x5343_414E)
        return points.map { p in
            let jy = jitter > 0 ? (rng.uniform() * 2 - 1) * jitter : 0
            let jx = jitter > 0 ? (rng.uniform() * 2 - 1) * jitter : 0
            return ((p.y + jy) * step, (p.x + jx) * step)
        }
    }
}
