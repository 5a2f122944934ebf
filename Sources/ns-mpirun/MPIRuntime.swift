import Foundation
import SwiftMPI

/// Runs `body` on every rank between MPI initialization and finalization.
/// A rank that fails prints its error and aborts the whole job: the other
/// ranks may be waiting in a collective, and a hang is worse than an exit.
func withMPI(_ body: (Communicator) throws -> Void) throws {
    let world: Communicator
    do {
        world = try MPI.initialize()
    } catch {
        FileHandle.standardError.write(Data("ns-mpirun: cannot start MPI: \(error)\n".utf8))
        throw ExitCodeError()
    }
    if let problem = MPI.launcherMismatch(worldSize: world.size, environment: ProcessInfo.processInfo.environment) {
        FileHandle.standardError.write(Data("ns-mpirun: \(problem)\n".utf8))
        try? MPI.finalize()
        throw ExitCodeError()
    }
    do {
        try body(world)
    } catch {
        FileHandle.standardError.write(Data("ns-mpirun: rank \(world.rank) of \(world.size): \(error)\n".utf8))
        fflush(nil)
        if world.size > 1 {
            // MPICH's Hydra drops output still on its way to the terminal when a
            // job aborts: give the launcher a moment to forward the message.
            usleep(500_000)
            MPI.abort(code: 1)
        }
        try? MPI.finalize()
        throw ExitCodeError()
    }
    try MPI.finalize()
}

struct ExitCodeError: Error {}

/// Each rank's line, printed by rank 0 in rank order (so output never interleaves).
func printInRankOrder(_ comm: Communicator, _ line: String) throws {
    let (bytes, counts) = try comm.gatherv(Array(line.utf8), root: 0)
    guard comm.rank == 0 else { return }
    var offset = 0
    for count in counts {
        print(String(decoding: bytes[offset..<(offset + count)], as: UTF8.self))
        offset += count
    }
    fflush(nil)
}

func jsonLine<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
