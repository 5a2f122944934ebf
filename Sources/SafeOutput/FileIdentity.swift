#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif
import Foundation

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

/// The room left on a file system, checked before a large file is started:
/// a write that fills the disk part-way through a collective write can
/// leave the ranks in different calls, so a file that cannot fit is
/// refused before any rank writes.
public enum FreeSpace {
    /// Bytes free to this process in `directory`'s file system, or nil when unknown.
    public static func bytes(in directory: String) -> Double? {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { return nil }
        return Double(s.f_bavail) * Double(s.f_frsize)
    }

    /// Why a file of about `size` bytes will not fit beside `target`, or nil.
    /// The estimate gets 5% and 64 KiB of slack for the file's metadata.
    public static func problem(target: String, size: Double) -> String? {
        guard size > 0 else { return nil }
        let directory = (target as NSString).deletingLastPathComponent
        guard let free = bytes(in: directory.isEmpty ? "." : directory) else { return nil }
        let need = size * 1.05 + 65_536
        guard need > free else { return nil }
        return String(format: "not enough space: the file needs about %.3g MB and %.3g MB are free in %@", need / 1e6, free / 1e6,
                      directory.isEmpty ? "." : directory)
    }
}
