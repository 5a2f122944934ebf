#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif

/// A file as the system knows it (device and inode), so two names for one
/// file (a link, `./x` and `x`, a path through a symbolic link) are caught.
public struct FileIdentity: Equatable, Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    /// Nil when nothing exists at `path`.
    public init?(_ path: String) {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        device = UInt64(s.st_dev)
        inode = UInt64(s.st_ino)
    }

    /// Refuses an output that is one of the inputs: writing it would destroy
    /// the data the run reads. `inputs` pairs a role ("the scan", "--resume")
    /// with a path; a missing input or output is no conflict.
    public static func refuse(output: String, role: String, sameAs inputs: [(role: String, path: String)]) throws {
        guard let out = FileIdentity(output) else { return }
        for input in inputs where FileIdentity(input.path) == out {
            throw OutputError(path: output, problem: "\(role) is the same file as \(input.role) (\(input.path)); it would be destroyed. Write to another file")
        }
    }
}
