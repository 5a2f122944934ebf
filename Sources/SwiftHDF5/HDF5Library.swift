import CHDF5
import Foundation

/// A failed HDF5 operation: which call, on which file/object, and why
/// (HDF5's own error stack, which the library would otherwise print).
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let path: String
    public let reason: String

    public init(call: String, path: String, reason: String) {
        self.call = call
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(call) on '\(path)' failed: \(reason)" }
}

/// Library set-up and the global lock: Debian's parallel HDF5 is not built
/// thread-safe, so every call goes through one recursive lock, as h5py does.
public enum HDF5Library {
    private static let lock = NSRecursiveLock()

    private static let setUp: Void = {
        H5open()
        // Errors are collected from the stack and thrown instead of printed.
        H5Eset_auto2(nsh5_e_default(), nil, nil)
    }()

    @inline(__always)
    static func locked<R>(_ body: () throws -> R) rethrows -> R {
        _ = setUp
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    public static var version: String {
        var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
        locked { _ = H5get_libversion(&major, &minor, &release) }
        return "\(major).\(minor).\(release)"
    }

    /// True when linked against a parallel (MPI-IO) build.
    public static var isParallel: Bool { nsh5_have_parallel() != 0 }

    /// HDF5's error stack as one line (outermost call, then the root cause), cleared afterwards.
    static func takeErrorStack() -> String {
        final class Lines { var items: [String] = [] }
        let lines = Lines()
        let box = Unmanaged.passRetained(lines)
        H5Ewalk2(nsh5_e_default(), H5E_WALK_DOWNWARD, { _, err, data in
            guard let err, let data else { return 0 }
            let lines = Unmanaged<Lines>.fromOpaque(data).takeUnretainedValue()
            let function = err.pointee.func_name.map { String(cString: $0) } ?? "?"
            let text = err.pointee.desc.map { String(cString: $0) } ?? ""
            lines.items.append("\(function)(): \(text)")
            return 0
        }, box.toOpaque())
        box.release()
        H5Eclear2(nsh5_e_default())
        guard let first = lines.items.first else { return "unknown HDF5 error" }
        if let last = lines.items.last, lines.items.count > 1 { return "\(first); cause: \(last)" }
        return first
    }

    /// Throws when an HDF5 call returned a negative id or status.
    @discardableResult
    static func check<I: BinaryInteger>(_ result: I, _ call: @autoclosure () -> String, path: @autoclosure () -> String) throws -> I {
        if result < 0 { throw HDF5Error(call: call(), path: path(), reason: takeErrorStack()) }
        return result
    }
}
