import CMPI

/// A communicator with a Cartesian topology and this rank's place in it.
public struct CartesianGrid: Sendable {
    public let comm: Communicator
    public let dims: [Int]
    public let periodic: [Bool]
    public let coords: [Int]

    init(comm: Communicator, dims: [Int], periodic: [Bool]) throws {
        self.comm = comm
        self.dims = dims
        self.periodic = periodic
        var c = [Int32](repeating: 0, count: dims.count)
        try check(MPI_Cart_coords(comm.handle, Int32(comm.rank), Int32(dims.count), &c), "MPI_Cart_coords")
        coords = c.map(Int.init)
    }

    /// Ranks `displacement` steps backwards (source) and forwards (dest)
    /// along `dimension`; nil past a non-periodic edge.
    public func shift(dimension: Int, displacement: Int = 1) throws -> (source: Int?, dest: Int?) {
        var source: Int32 = 0, dest: Int32 = 0
        try check(MPI_Cart_shift(comm.handle, Int32(dimension), Int32(displacement), &source, &dest),
                  "MPI_Cart_shift(dimension \(dimension), by \(displacement))")
        let null = nsmpi_proc_null()
        return (source == null ? nil : Int(source), dest == null ? nil : Int(dest))
    }

    /// The rank at the given grid coordinates.
    public func rank(at coords: [Int]) throws -> Int {
        var r: Int32 = 0
        try check(MPI_Cart_rank(comm.handle, coords.map { Int32($0) }, &r), "MPI_Cart_rank(\(coords))")
        return Int(r)
    }
}
