#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#else
import Darwin
#endif
import Foundation

/// A product file written under a temporary name beside its target and
/// renamed into place only once complete and on disk, so a kill, a full
/// disk or an error leaves whatever was at the target untouched and never
/// a partial file under the final name. The rename is atomic because the
/// temporary lies in the target's own directory (the same file system).
public struct PendingFile: Sendable, Equatable {
    public let target: String
    public let temporary: String

    /// `token` tells concurrent writers of one target apart (a process id;
    /// ranks writing one file together must pass the same).
    public init(target: String, token: String) {
        self.target = target
        let url = URL(fileURLWithPath: target)
        temporary = url.deletingLastPathComponent().appendingPathComponent(Self.temporaryName(url.lastPathComponent, token: token)).path
    }

    /// The name's first characters, a hash of the whole name and the token:
    /// short whatever the target's length (OpenMPI's MPI-IO aborts the job
    /// on a file name of 230 or more bytes; only the temporary goes through
    /// MPI-IO, the rename does not), and distinct for distinct targets.
    static func temporaryName(_ name: String, token: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var prefix = ""
        for c in name {
            guard prefix.utf8.count + String(c).utf8.count <= 48 else { break }
            prefix.append(c)
        }
        return prefix + "." + String(hash, radix: 16) + ".partial-" + token
    }

    /// This process's token.
    public static var processToken: String { String(getpid()) }

    /// Flushes the temporary to disk, renames it onto the target, and
    /// flushes the directory so the rename itself survives a crash.
    public func commit() throws {
        try Self.sync(temporary, directory: false)
        guard rename(temporary, target) == 0 else {
            let e = errno
            throw OutputError(path: target, problem: "cannot move the completed \(temporary) into place: \(String(cString: strerror(e)))")
        }
        try Self.sync(URL(fileURLWithPath: target).deletingLastPathComponent().path, directory: true)
    }

    /// Removes the temporary (after a failure); the target is untouched.
    public func discard() {
        unlink(temporary)
    }

    private static func sync(_ path: String, directory: Bool) throws {
        let fd = open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
        guard fd >= 0 else {
            let e = errno
            throw OutputError(path: path, problem: "cannot open to flush it to disk: \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            let e = errno
            // Some file systems cannot flush a directory; the file itself must flush.
            if directory && (e == EINVAL || e == EROFS) { return }
            throw OutputError(path: path, problem: "cannot flush to disk: \(String(cString: strerror(e)))")
        }
    }

    /// Writes `data` whole to `target` through a temporary (one process).
    public static func write(_ data: Data, to target: String) throws {
        let pending = PendingFile(target: target, token: processToken)
        do {
            try data.write(to: URL(fileURLWithPath: pending.temporary))
            try pending.commit()
        } catch let e as OutputError {
            pending.discard()
            throw e
        } catch {
            pending.discard()
            throw OutputError(path: target, problem: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// An output that cannot be written, naming the file and the problem.
public struct OutputError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}
