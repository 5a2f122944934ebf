import Foundation
import SafeOutput
import SwiftMPI

/// A file written by every rank of a communicator together, through a
/// temporary beside its target (see `PendingFile`): rank 0 names the
/// temporary and checks that the target is none of the inputs, and moves
/// the completed file into place; every rank learns the outcome, so all
/// of them fail alike.
public enum CollectiveOutput {
    /// Collective: the temporary to write, once the target is known not to
    /// be an input and a file of about `size` bytes fits beside it.
    public static func begin(_ target: String, comm: Communicator?, inputs: [(role: String, path: String)] = [],
                             size: Double = 0) throws -> PendingFile {
        var problem = ""
        var token = PendingFile.processToken
        if (comm?.rank ?? 0) == 0 {
            do { try FileIdentity.refuse(output: target, role: "the output", sameAs: inputs) } catch let e as OutputError { problem = e.problem }
            if problem.isEmpty, let p = FreeSpace.problem(target: target, size: size) { problem = p }
        }
        if let comm {
            problem = try comm.broadcast(problem, root: 0)
            token = try comm.broadcast(token, root: 0)
        }
        guard problem.isEmpty else { throw OutputError(path: target, problem: problem) }
        return PendingFile(target: target, token: token)
    }

    /// Collective, after the file is closed on every rank: rank 0 moves it into place.
    public static func commit(_ pending: PendingFile, comm: Communicator?) throws {
        var problem = ""
        if let comm { try comm.barrier() }
        if (comm?.rank ?? 0) == 0 {
            do { try pending.commit() } catch {
                problem = "\(error)"
                pending.discard()
            }
        }
        if let comm { problem = try comm.broadcast(problem, root: 0) }
        guard problem.isEmpty else { throw OutputError(path: pending.target, problem: "not written: \(problem)") }
    }

    /// Collective: rank 0 removes the temporary (after a failure or an abort).
    public static func discard(_ pending: PendingFile, comm: Communicator?) {
        if (comm?.rank ?? 0) == 0 { pending.discard() }
    }

    /// Collective: `body` writes (and closes) the file at the path it is
    /// given; the file replaces the target only when every rank succeeded.
    /// A failure on any rank leaves the target as it was, and every rank
    /// throws an `OutputError` (the same kind everywhere, so the ranks can
    /// go on together after it).
    public static func write<R>(_ target: String, comm: Communicator?, inputs: [(role: String, path: String)] = [],
                                size: Double = 0, _ body: (String) throws -> R) throws -> R {
        let pending = try begin(target, comm: comm, inputs: inputs, size: size)
        var result: R?
        var failure: Error?
        do { result = try body(pending.temporary) } catch { failure = error }
        let failed = try comm?.allreduce(failure == nil ? 0 : 1, op: .max) ?? (failure == nil ? 0 : 1)
        guard failed == 0, let result else {
            discard(pending, comm: comm)
            throw OutputError(path: target, problem: "not written: " + (failure.map { "\($0)" } ?? "another rank failed while writing it"))
        }
        try commit(pending, comm: comm)
        return result
    }
}
