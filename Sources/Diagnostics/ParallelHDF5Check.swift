import Numerics
import SwiftHDF5
import SwiftMPI

/// What one rank wrote in the parallel HDF5 check.
public struct ParallelHDF5Report: Codable, Sendable {
    public var rank: Int
    public var size: Int
    public var path: String
    public var firstRow: Int
    public var rows: Int
}

/// Every rank writes its own block of rows of shared datasets in one file,
/// collectively; the rows are split unevenly and the last rank writes none,
/// so an empty selection takes part in the collective calls too.
public enum ParallelHDF5Check {
    public static let columns = 6
    public static func rowsTotal(ranks: Int) -> Int { 3 * ranks - 2 }
    public static func value(row: Int, column: Int) -> Float { Float(row * columns + column) + 0.5 }
    public static func complexValue(row: Int, column: Int) -> Complex<Float> {
        Complex(value(row: row, column: column), -Float(row))
    }

    /// Rows owned by `rank`: rank r gets 3 rows except the last, which gets
    /// none, and rank 0, which gets one more (uneven on purpose).
    public static func block(rank: Int, ranks: Int) -> (first: Int, count: Int) {
        if ranks == 1 { return (0, 1) }
        if rank == ranks - 1 { return (rowsTotal(ranks: ranks), 0) }
        if rank == 0 { return (0, 4) }
        return (4 + 3 * (rank - 1), 3)
    }

    public static func run(_ comm: Communicator, path: String) throws -> ParallelHDF5Report {
        let file = try HDF5File(path: path, mode: .truncate, comm: comm)
        let total = rowsTotal(ranks: comm.size)
        let (first, count) = block(rank: comm.rank, ranks: comm.size)
        let cols = columns

        let real = try file.createDataset("/check/real", of: Float.self, shape: [total, cols])
        let complex = try file.createDataset("/check/complex", of: Complex<Float>.self, shape: [total, cols])
        let frames = try file.createDataset("/check/frames", of: UInt16.self, shape: [0, 2, cols],
                                            maxShape: [nil, 2, cols], chunks: [1, 2, cols])
        var rows: [Float] = [], complexRows: [Complex<Float>] = []
        for row in first..<(first + count) {
            for col in 0..<cols {
                rows.append(value(row: row, column: col))
                complexRows.append(complexValue(row: row, column: col))
            }
        }
        try real.write(rows, offset: [first, 0], count: [count, cols])
        try complex.write(complexRows, offset: [first, 0], count: [count, cols])

        // An extendible stack of frames, one per rank, written collectively after growing it.
        try frames.resize([comm.size, 2, cols])
        let frame = (0..<(2 * cols)).map { UInt16(comm.rank * 100 + $0) }
        try frames.write(frame, offset: [comm.rank, 0, 0], count: [1, 2, cols])

        try file.write(string: "nanosurveyor parallel HDF5 check", to: "/check/title")
        try file.write(scalar: Int64(comm.size), to: "/check/ranks")
        try real.setAttribute("units", string: "counts")
        try real.setAttribute("block_starts", (0..<comm.size).map { Int64(block(rank: $0, ranks: comm.size).first) })
        try file.softLink("/check/link_to_real", to: "/check/real")
        try file.close()
        return ParallelHDF5Report(rank: comm.rank, size: comm.size, path: path, firstRow: first, rows: count)
    }
}
