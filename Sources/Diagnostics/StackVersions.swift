import SwiftFFTW
import SwiftHDF5
import SwiftMPI
import SwiftZMQ

/// Versions of the libraries actually linked, as they report themselves.
public struct StackVersions: Codable, Sendable {
    public var mpi: String
    public var mpiStandard: String
    public var fftw: String
    public var hdf5: String
    public var hdf5Parallel: Bool
    public var zmq: String

    public static func current() -> StackVersions {
        StackVersions(mpi: String(MPI.libraryVersion.split(separator: "\n").first ?? ""), mpiStandard: MPI.standardVersion, fftw: FFTW.version,
                      hdf5: HDF5Library.version, hdf5Parallel: HDF5Library.isParallel, zmq: ZMQ.version)
    }
}
