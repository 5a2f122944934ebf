import CMPI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An MPI communicator that owns its handle (except MPI_COMM_WORLD).
///
/// Every operation maps MPI's return code to a thrown `MPIError`. Messages
/// larger than `maxMessageBytes` are split into several MPI calls, so counts
/// never overflow MPI's 32-bit `int` (the 2 GiB failure seen in peer tools).
/// Point-to-point transfers are self-delimiting: a message of n elements
/// travels as n / chunk full pieces plus one shorter (possibly empty) piece.
public final class Communicator: @unchecked Sendable {
    /// The raw handle, for sibling wrappers (HDF5's MPI-IO driver).
    package private(set) var handle: CommSlot
    private let owned: Bool
    public let rank: Int
    public let size: Int
    /// Largest payload of one MPI call; both sides of a transfer must agree.
    public var maxMessageBytes: Int = 1 << 30

    /// Tag used by the wrapper's own point-to-point fallbacks of collectives.
    public static let reservedTag = 32_767

    init(borrowing handle: CommSlot) throws {
        self.handle = handle
        self.owned = false
        (rank, size) = try Communicator.rankAndSize(handle)
    }

    init(owning handle: CommSlot) throws {
        self.handle = handle
        self.owned = true
        (rank, size) = try Communicator.rankAndSize(handle)
    }

    private static func rankAndSize(_ handle: CommSlot) throws -> (Int, Int) {
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(handle, &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(handle, &s), "MPI_Comm_size")
        return (Int(r), Int(s))
    }

    deinit {
        if owned && handle != nsmpi_comm_null() && !MPI.isFinalized {
            MPI_Comm_free(&handle)
        }
    }

    /// Releases the communicator now; later calls on it fail with MPI_ERR_COMM.
    public func free() throws {
        guard owned else {
            throw MPIError(call: "MPI_Comm_free", code: 0, reason: "MPI_COMM_WORLD cannot be freed")
        }
        try check(MPI_Comm_free(&handle), "MPI_Comm_free")
    }

    public var isFreed: Bool { handle == nsmpi_comm_null() }

    func chunkElements<T>(_: T.Type) -> Int { Swift.max(1, maxMessageBytes / MemoryLayout<T>.stride) }

    // MARK: Creation

    public func duplicate() throws -> Communicator {
        var out: CommSlot = nsmpi_comm_null()
        try check(MPI_Comm_dup(handle, &out), "MPI_Comm_dup")
        let dup = try Communicator(owning: out)
        dup.maxMessageBytes = maxMessageBytes
        return dup
    }

    /// Ranks with the same color form a new communicator, ordered by key;
    /// a nil color leaves this rank out (returns nil).
    public func split(color: Int?, key: Int) throws -> Communicator? {
        var out: CommSlot = nsmpi_comm_null()
        let c = color.map { Int32($0) } ?? nsmpi_undefined()
        try check(MPI_Comm_split(handle, c, Int32(key), &out), "MPI_Comm_split(color \(String(describing: color)))")
        if out == nsmpi_comm_null() { return nil }
        return try Communicator(owning: out)
    }

    // MARK: Synchronization

    public func barrier() throws {
        try check(MPI_Barrier(handle), "MPI_Barrier")
    }

    /// Starts a barrier that completes once every rank has entered it.
    public func ibarrier() throws -> Request {
        let request = Request()
        var r: RequestSlot = nsmpi_request_null()
        try check(MPI_Ibarrier(handle, &r), "MPI_Ibarrier")
        request.handles.append(r)
        return request
    }

    /// A barrier that sleeps between polls instead of spinning: for ranks
    /// with nothing to do while others work on the same cores.
    public func sleepingBarrier(poll: Duration = .milliseconds(2)) throws {
        let request = try ibarrier()
        let nanoseconds = poll.components.attoseconds / 1_000_000_000 + poll.components.seconds * 1_000_000_000
        var pause = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        while try !request.test() { nanosleep(&pause, nil) }
    }

    // MARK: Point to point

    public func send<T: MPIDatatype>(_ buffer: UnsafeBufferPointer<T>, to dest: Int, tag: Int) throws {
        let chunk = chunkElements(T.self)
        var offset = 0
        while true {
            let n = Swift.min(chunk, buffer.count - offset)
            try check(MPI_Send(buffer.baseAddress.map { UnsafeRawPointer($0 + offset) }, Int32(n), T.mpiType,
                               Int32(dest), Int32(tag), handle),
                      "MPI_Send(to rank \(dest), tag \(tag), \(n) elements)")
            offset += n
            if n < chunk { return }
        }
    }

    public func send<T: MPIDatatype>(_ values: [T], to dest: Int, tag: Int) throws {
        try values.withUnsafeBufferPointer { try send($0, to: dest, tag: tag) }
    }

    /// Receives a message of any length (nil source/tag: any).
    public func receive<T: MPIDatatype>(_: T.Type = T.self, from source: Int? = nil, tag: Int? = nil) throws -> (values: [T], status: Status) {
        let chunk = chunkElements(T.self)
        var src = source.map { Int32($0) } ?? nsmpi_any_source()
        var tg = tag.map { Int32($0) } ?? nsmpi_any_tag()
        var values: [T] = []
        while true {
            var status = MPI_Status()
            try check(MPI_Probe(src, tg, handle, &status), "MPI_Probe(from \(src), tag \(tg))")
            src = nsmpi_status_source(&status)
            tg = nsmpi_status_tag(&status)
            var count: Int32 = 0
            try check(MPI_Get_count(&status, T.mpiType, &count), "MPI_Get_count")
            if count == nsmpi_undefined() {
                throw MPIError(call: "MPI_Get_count", code: 0,
                               reason: "message from rank \(src) tag \(tg) is not a whole number of \(T.self) elements")
            }
            let part = try [T](unsafeUninitializedCapacity: Int(count)) { buf, initialized in
                try check(MPI_Recv(buf.baseAddress, count, T.mpiType, src, tg, handle, nsmpi_status_ignore()),
                          "MPI_Recv(from rank \(src), tag \(tg), \(count) elements)")
                initialized = Int(count)
            }
            values.append(contentsOf: part)
            if Int(count) < chunk { break }
        }
        return (values, Status(source: Int(src), tag: Int(tg), count: values.count))
    }

    /// Receives into a buffer; the message may be shorter than the buffer
    /// (see `Status.count`) but not longer (MPI_ERR_TRUNCATE).
    @discardableResult
    public func receive<T: MPIDatatype>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int) throws -> Status {
        let chunk = chunkElements(T.self)
        var offset = 0
        var status = MPI_Status()
        while true {
            let n = Swift.min(chunk, buffer.count - offset)
            try check(MPI_Recv(buffer.baseAddress.map { UnsafeMutableRawPointer($0 + offset) }, Int32(n), T.mpiType,
                               Int32(source), Int32(tag), handle, &status),
                      "MPI_Recv(from rank \(source), tag \(tag), room for \(n) elements)")
            var count: Int32 = 0
            try check(MPI_Get_count(&status, T.mpiType, &count), "MPI_Get_count")
            offset += Int(count)
            if Int(count) < chunk { break }
        }
        return Status(source: Int(nsmpi_status_source(&status)), tag: Int(nsmpi_status_tag(&status)), count: offset)
    }

    /// Starts a send; the buffer must stay valid until the request completes.
    public func isend<T: MPIDatatype>(_ buffer: UnsafeBufferPointer<T>, to dest: Int, tag: Int) throws -> Request {
        let request = Request()
        let chunk = chunkElements(T.self)
        var offset = 0
        while true {
            let n = Swift.min(chunk, buffer.count - offset)
            var r: RequestSlot = nsmpi_request_null()
            try check(MPI_Isend(buffer.baseAddress.map { UnsafeRawPointer($0 + offset) }, Int32(n), T.mpiType,
                                Int32(dest), Int32(tag), handle, &r),
                      "MPI_Isend(to rank \(dest), tag \(tag), \(n) elements)")
            request.handles.append(r)
            offset += n
            if n < chunk { return request }
        }
    }

    /// Starts a receive of exactly `buffer.count` elements; the buffer must
    /// stay valid and untouched until the request completes.
    public func irecv<T: MPIDatatype>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int) throws -> Request {
        let request = Request()
        let chunk = chunkElements(T.self)
        var offset = 0
        while true {
            let n = Swift.min(chunk, buffer.count - offset)
            var r: RequestSlot = nsmpi_request_null()
            try check(MPI_Irecv(buffer.baseAddress.map { UnsafeMutableRawPointer($0 + offset) }, Int32(n), T.mpiType,
                                Int32(source), Int32(tag), handle, &r),
                      "MPI_Irecv(from rank \(source), tag \(tag), \(n) elements)")
            request.handles.append(r)
            offset += n
            if n < chunk { return request }
        }
    }

    // MARK: Collectives

    /// Broadcasts a buffer whose size every rank already knows.
    public func broadcast<T: MPIDatatype>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        let chunk = chunkElements(T.self)
        var offset = 0
        repeat {
            let n = Swift.min(chunk, buffer.count - offset)
            try check(MPI_Bcast(buffer.baseAddress.map { UnsafeMutableRawPointer($0 + offset) }, Int32(n), T.mpiType,
                                Int32(root), handle),
                      "MPI_Bcast(root \(root), \(n) elements)")
            offset += n
        } while offset < buffer.count
    }

    /// Broadcasts root's array; other ranks' input is ignored.
    public func broadcast<T: MPIDatatype>(_ values: [T], root: Int) throws -> [T] {
        var count = [Int64(values.count)]
        try count.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        if rank == root {
            var copy = values
            try copy.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
            return copy
        }
        return try [T](unsafeUninitializedCapacity: Int(count[0])) { buf, initialized in
            try broadcast(buf, root: root)
            initialized = Int(count[0])
        }
    }

    public func broadcast<T: MPIDatatype>(_ value: T, root: Int) throws -> T {
        try broadcast([value], root: root)[0]
    }

    public func broadcast(_ text: String, root: Int) throws -> String {
        String(decoding: try broadcast(Array(text.utf8), root: root), as: UTF8.self)
    }

    /// Combines `buffer` element-wise over all ranks, in place.
    public func allreduce<T: MPIDatatype>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {
        let chunk = chunkElements(T.self)
        var offset = 0
        while offset < buffer.count {
            let n = Swift.min(chunk, buffer.count - offset)
            try check(MPI_Allreduce(nsmpi_in_place(), UnsafeMutableRawPointer(buffer.baseAddress! + offset), Int32(n),
                                    T.mpiType, op.handle, handle),
                      "MPI_Allreduce(\(op), \(n) \(T.self) elements)")
            offset += n
        }
    }

    public func allreduce<T: MPIDatatype>(_ values: inout [T], op: ReduceOp) throws {
        try values.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
    }

    public func allreduce<T: MPIDatatype>(_ value: T, op: ReduceOp) throws -> T {
        var v = [value]
        try allreduce(&v, op: op)
        return v[0]
    }

    /// Every rank's value, in rank order, on every rank.
    public func allgather<T: MPIDatatype>(_ value: T) throws -> [T] {
        try withUnsafePointer(to: value) { mine in
            try [T](unsafeUninitializedCapacity: size) { buf, initialized in
                try check(MPI_Allgather(mine, 1, T.mpiType, buf.baseAddress, 1, T.mpiType, handle), "MPI_Allgather")
                initialized = size
            }
        }
    }

    /// Concatenates every rank's array on `root`, in rank order; other ranks get empty results.
    public func gatherv<T: MPIDatatype>(_ local: [T], root: Int) throws -> (values: [T], counts: [Int]) {
        let counts = try allgather(local.count)
        let total = counts.reduce(0, +)
        if total * MemoryLayout<T>.stride > maxMessageBytes {
            return try gathervByParts(local, counts: counts, root: root)
        }
        let counts32 = counts.map { Int32($0) }
        let displs32 = displacements(counts).map { Int32($0) }
        var result: [T] = []
        if rank == root {
            result = try [T](unsafeUninitializedCapacity: total) { buf, initialized in
                try local.withUnsafeBufferPointer { src in
                    try check(MPI_Gatherv(src.baseAddress, Int32(local.count), T.mpiType, buf.baseAddress, counts32, displs32,
                                          T.mpiType, Int32(root), handle), "MPI_Gatherv(root \(root))")
                }
                initialized = total
            }
        } else {
            try local.withUnsafeBufferPointer { src in
                try check(MPI_Gatherv(src.baseAddress, Int32(local.count), T.mpiType, nil, nil, nil,
                                      T.mpiType, Int32(root), handle), "MPI_Gatherv(root \(root))")
            }
        }
        return (result, rank == root ? counts : [])
    }

    private func gathervByParts<T: MPIDatatype>(_ local: [T], counts: [Int], root: Int) throws -> (values: [T], counts: [Int]) {
        guard rank == root else {
            try send(local, to: root, tag: Communicator.reservedTag)
            return ([], [])
        }
        let displs = displacements(counts)
        let total = counts.reduce(0, +)
        let values = try [T](unsafeUninitializedCapacity: total) { buf, initialized in
            for source in 0..<size {
                let part = UnsafeMutableBufferPointer(rebasing: buf[displs[source]..<displs[source] + counts[source]])
                if source == root {
                    _ = part.initialize(from: local)
                } else {
                    try receive(into: part, from: source, tag: Communicator.reservedTag)
                }
            }
            initialized = total
        }
        return (values, counts)
    }

    /// Sends `counts[r]` consecutive elements of root's `values` to each rank r.
    public func scatterv<T: MPIDatatype>(_ values: [T], counts: [Int], root: Int) throws -> [T] {
        if rank == root {
            guard counts.count == size, counts.reduce(0, +) == values.count, counts.allSatisfy({ $0 >= 0 }) else {
                throw MPIError(call: "MPI_Scatterv", code: 0,
                               reason: "counts \(counts) do not split \(values.count) elements over \(size) ranks")
            }
        }
        let myCount = try scatterCounts(rank == root ? counts : [], root: root)
        let total = try broadcast(rank == root ? values.count : 0, root: root)
        if total * MemoryLayout<T>.stride > maxMessageBytes {
            return try scattervByParts(values, counts: counts, myCount: myCount, root: root)
        }
        return try [T](unsafeUninitializedCapacity: myCount) { buf, initialized in
            if rank == root {
                let counts32 = counts.map { Int32($0) }
                let displs32 = displacements(counts).map { Int32($0) }
                try values.withUnsafeBufferPointer { src in
                    try check(MPI_Scatterv(src.baseAddress, counts32, displs32, T.mpiType, buf.baseAddress, Int32(myCount),
                                           T.mpiType, Int32(root), handle), "MPI_Scatterv(root \(root))")
                }
            } else {
                try check(MPI_Scatterv(nil, nil, nil, T.mpiType, buf.baseAddress, Int32(myCount),
                                       T.mpiType, Int32(root), handle), "MPI_Scatterv(root \(root))")
            }
            initialized = myCount
        }
    }

    private func scatterCounts(_ counts: [Int], root: Int) throws -> Int {
        var mine = 0
        try counts.withUnsafeBufferPointer { src in
            try check(MPI_Scatter(src.baseAddress, 1, Int.mpiType, &mine, 1, Int.mpiType, Int32(root), handle),
                      "MPI_Scatter(counts, root \(root))")
        }
        return mine
    }

    private func scattervByParts<T: MPIDatatype>(_ values: [T], counts: [Int], myCount: Int, root: Int) throws -> [T] {
        guard rank == root else {
            return try [T](unsafeUninitializedCapacity: myCount) { buf, initialized in
                try receive(into: buf, from: root, tag: Communicator.reservedTag)
                initialized = myCount
            }
        }
        let displs = displacements(counts)
        return try values.withUnsafeBufferPointer { src in
            for dest in 0..<size where dest != root {
                try send(UnsafeBufferPointer(rebasing: src[displs[dest]..<displs[dest] + counts[dest]]),
                         to: dest, tag: Communicator.reservedTag)
            }
            return Array(src[displs[root]..<displs[root] + counts[root]])
        }
    }

    // MARK: Topology

    /// A Cartesian grid over this communicator's ranks; `dims` entries of 0
    /// are filled in by MPI_Dims_create.
    public func cartesian(dims: [Int], periodic: [Bool], reorder: Bool = false) throws -> CartesianGrid {
        guard dims.count == periodic.count else {
            throw MPIError(call: "MPI_Cart_create", code: 0, reason: "\(dims.count) dims but \(periodic.count) periodic flags")
        }
        var d = dims.map { Int32($0) }
        try check(MPI_Dims_create(Int32(size), Int32(d.count), &d), "MPI_Dims_create(\(size) ranks, \(dims))")
        let p = periodic.map { Int32($0 ? 1 : 0) }
        var out: CommSlot = nsmpi_comm_null()
        try check(MPI_Cart_create(handle, Int32(d.count), d, p, reorder ? 1 : 0, &out), "MPI_Cart_create(\(d))")
        guard out != nsmpi_comm_null() else {
            throw MPIError(call: "MPI_Cart_create", code: 0,
                           reason: "grid \(d) has fewer places than the \(size) ranks; this rank has none")
        }
        let comm = try Communicator(owning: out)
        comm.maxMessageBytes = maxMessageBytes
        return try CartesianGrid(comm: comm, dims: d.map(Int.init), periodic: periodic)
    }
}

/// Where a received message came from and how many elements it held.
public struct Status: Sendable, Equatable {
    public let source: Int
    public let tag: Int
    public let count: Int
}

func displacements(_ counts: [Int]) -> [Int] {
    var out = [Int](repeating: 0, count: counts.count)
    for i in counts.indices.dropFirst() { out[i] = out[i - 1] + counts[i - 1] }
    return out
}
