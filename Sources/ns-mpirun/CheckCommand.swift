import ArgumentParser
import Diagnostics
import Foundation
import SwiftMPI

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exercise the MPI, parallel HDF5 stack on this machine or cluster and print what each rank saw (JSON).",
        subcommands: [Collectives.self, Halo.self, ParallelHDF5.self])

    struct Collectives: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allreduce, broadcast, send/receive, non-blocking and persistent exchanges, scatterv/gatherv and split.")

        @Option(help: "Elements per array.")
        var length = 257

        @Option(help: "Largest payload of one MPI call in bytes (small values force chunked messages).")
        var maxMessageBytes = 1 << 30

        func validate() throws {
            guard length > 0 else { throw ValidationError("--length must be positive, got \(length)") }
            guard maxMessageBytes >= 16 else { throw ValidationError("--max-message-bytes must be at least 16, got \(maxMessageBytes)") }
        }

        func run() throws {
            try withMPI { world in
                let comm = try world.duplicate()
                comm.maxMessageBytes = maxMessageBytes
                try printInRankOrder(world, try jsonLine(try CollectivesCheck.run(comm, length: length)))
            }
        }
    }

    struct Halo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Halo exchange between neighbours on a 2-D Cartesian grid of ranks.")

        @Option(help: "Rows of each rank's block.")
        var blockHeight = 4
        @Option(help: "Columns of each rank's block.")
        var blockWidth = 5
        @Option(help: "Halo width in elements.")
        var halo = 1

        func validate() throws {
            guard halo >= 1, blockHeight >= halo, blockWidth >= halo else {
                throw ValidationError("--halo (\(halo)) must be at least 1 and at most --block-height and --block-width")
            }
        }

        func run() throws {
            try withMPI { world in
                let report = try HaloCheck.run(world, blockHeight: blockHeight, blockWidth: blockWidth, halo: halo)
                try printInRankOrder(world, try jsonLine(report))
            }
        }
    }

    struct ParallelHDF5: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hdf5",
            abstract: "Every rank writes its block of shared datasets to one file through MPI-IO, collectively.")

        @Option(name: .shortAndLong, help: "The HDF5 file to write (replaced if it exists).")
        var output: String

        func run() throws {
            try withMPI { world in
                let report = try ParallelHDF5Check.run(world, path: output)
                try printInRankOrder(world, try jsonLine(report))
            }
        }
    }
}
