import CMPI

/// An MPI call that returned an error code (MPI_ERRORS_RETURN is installed at
/// initialization, so errors arrive here instead of aborting the job).
public struct MPIError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32
    public let reason: String

    public init(call: String, code: Int32, reason: String) {
        self.call = call
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(call) failed: \(reason)" }
}

@inline(__always)
func check(_ rc: Int32, _ call: @autoclosure () -> String) throws(MPIError) {
    if rc != nsmpi_success() { throw MPIError(call: call(), code: rc, reason: errorString(rc)) }
}

func errorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: Int(nsmpi_max_error_string()) + 1)
    var length: Int32 = 0
    guard MPI_Error_string(code, &buffer, &length) == nsmpi_success() else {
        return "MPI error code \(code)"
    }
    return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
