import ArgumentParser
import Diagnostics
import Foundation
import SwiftMPI

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each rank's place and host, and the MPI, FFTW, HDF5 and ZeroMQ versions linked.")

    @Flag(help: "One JSON object per rank instead of text.")
    var json = false

    struct RankInfo: Codable {
        var rank: Int
        var size: Int
        var host: String
        var pid: Int32
        var versions: StackVersions
    }

    func run() throws {
        try withMPI { world in
            let info = RankInfo(rank: world.rank, size: world.size, host: MPI.processorName,
                                pid: ProcessInfo.processInfo.processIdentifier, versions: .current())
            if json {
                try printInRankOrder(world, try jsonLine(info))
                return
            }
            try printInRankOrder(world, "rank \(info.rank) of \(info.size) on \(info.host) (pid \(info.pid))")
            if world.rank == 0 {
                let v = info.versions
                print("nanosurveyor \(NanosurveyorVersion.string)")
                print("MPI:   \(v.mpi) (standard \(v.mpiStandard))")
                print("FFTW:  \(v.fftw)")
                print("HDF5:  \(v.hdf5)\(v.hdf5Parallel ? " (parallel)" : " (serial)")")
                print("ZeroMQ: \(v.zmq)")
            }
        }
    }
}
