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
