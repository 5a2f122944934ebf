import CMPI

/// A pending non-blocking transfer (one MPI request per chunk).
///
/// A request that goes out of scope unfinished is waited for, so that MPI
/// never writes into memory the caller believes is free.
public final class Request: @unchecked Sendable {
    var handles: [RequestSlot] = []

    init() {}

    public var isComplete: Bool { handles.isEmpty }

    public func wait() throws {
        guard !handles.isEmpty else { return }
        let rc = MPI_Waitall(Int32(handles.count), &handles, nsmpi_statuses_ignore())
        handles.removeAll()
        try check(rc, "MPI_Waitall")
    }

    /// True when every part has completed (then the request is finished).
    public func test() throws -> Bool {
        guard !handles.isEmpty else { return true }
        var flag: Int32 = 0
        try check(MPI_Testall(Int32(handles.count), &handles, &flag, nsmpi_statuses_ignore()), "MPI_Testall")
        if flag != 0 { handles.removeAll() }
        return flag != 0
    }

    public static func waitAll(_ requests: [Request]) throws {
        var first: Error?
        for r in requests {
            do { try r.wait() } catch { if first == nil { first = error } }
        }
        if let first { throw first }
    }

    deinit {
        if !handles.isEmpty && !MPI.isFinalized {
            MPI_Waitall(Int32(handles.count), &handles, nsmpi_statuses_ignore())
        }
    }
}

/// Point-to-point transfers set up once (`MPI_Recv_init`, `MPI_Send_init`)
/// and run again each time with `start`: for exchanges that repeat with the
/// same peers and buffers, such as a solver's halo exchange every iteration.
/// Receives are added before sends so that `start` posts them first.
///
/// Freed when the last reference goes; an unfinished run is waited for
/// first, so that MPI never writes into memory the caller believes is free.
public final class PersistentRequests: @unchecked Sendable {
    var handles: [RequestSlot] = []
    private var running = false

    public init() {}

    /// Adds a receive of exactly `buffer.count` elements (one request per chunk).
    public func addReceive<T: MPIDatatype>(into buffer: UnsafeMutableBufferPointer<T>, from source: Int, tag: Int,
                                           on comm: Communicator) throws {
        try add(count: buffer.count, chunk: comm.chunkElements(T.self)) { offset, n, r in
            try check(MPI_Recv_init(buffer.baseAddress.map { UnsafeMutableRawPointer($0 + offset) }, Int32(n), T.mpiType,
                                    Int32(source), Int32(tag), comm.handle, &r),
                      "MPI_Recv_init(from rank \(source), tag \(tag), \(n) elements)")
        }
    }

    /// Adds a send of the whole buffer (one request per chunk).
    public func addSend<T: MPIDatatype>(_ buffer: UnsafeBufferPointer<T>, to dest: Int, tag: Int,
                                        on comm: Communicator) throws {
        try add(count: buffer.count, chunk: comm.chunkElements(T.self)) { offset, n, r in
            try check(MPI_Send_init(buffer.baseAddress.map { UnsafeRawPointer($0 + offset) }, Int32(n), T.mpiType,
                                    Int32(dest), Int32(tag), comm.handle, &r),
                      "MPI_Send_init(to rank \(dest), tag \(tag), \(n) elements)")
        }
    }

    /// One request per chunk of `count` elements: n / chunk full pieces and
    /// one shorter (possibly empty), as the communicator's own transfers.
    private func add(count: Int, chunk: Int, _ make: (_ offset: Int, _ n: Int, _ request: inout RequestSlot) throws -> Void) throws {
        precondition(!running, "requests are added while no run is in progress")
        var offset = 0
        while true {
            let n = Swift.min(chunk, count - offset)
            var r: RequestSlot = nsmpi_request_null()
            try make(offset, n, &r)
            handles.append(r)
            offset += n
            if n < chunk { return }
        }
    }

    /// Starts every transfer; the buffers stay untouched until `test` says
    /// done or `wait` returns.
    public func start() throws {
        precondition(!running, "the previous run has not been waited for")
        guard !handles.isEmpty else { return }
        try check(MPI_Startall(Int32(handles.count), &handles), "MPI_Startall")
        running = true
    }

    /// Advances the transfers; true once all are done (the run is then over).
    public func test() throws -> Bool {
        guard running else { return true }
        var flag: Int32 = 0
        try check(MPI_Testall(Int32(handles.count), &handles, &flag, nsmpi_statuses_ignore()), "MPI_Testall")
        if flag != 0 { running = false }
        return flag != 0
    }

    public func wait() throws {
        guard running else { return }
        running = false
        try check(MPI_Waitall(Int32(handles.count), &handles, nsmpi_statuses_ignore()), "MPI_Waitall")
    }

    deinit {
        guard !MPI.isFinalized else { return }
        if running { MPI_Waitall(Int32(handles.count), &handles, nsmpi_statuses_ignore()) }
        for i in handles.indices { MPI_Request_free(&handles[i]) }
    }
}
