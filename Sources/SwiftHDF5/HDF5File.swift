import CHDF5
import CMPI
import Foundation
import SwiftMPI

/// An HDF5 file, serial or opened collectively through MPI-IO.
public final class HDF5File: HDF5Location, @unchecked Sendable {
    public enum Mode: Sendable {
        case readOnly, readWrite
        /// Create, replacing any existing file.
        case truncate
        /// Create, failing if the file exists.
        case createNew
    }

    public let path: String
    public let isParallel: Bool
    private var transferCollective: hid_t = -1
    private var transferIndependent: hid_t = -1
    /// Groups and datasets opened through this file, closed before it is
    /// (MPI-IO files refuse to close while objects are open).
    var openObjects: [WeakObject] = []

    /// Opens or creates `path`; with `comm`, every rank of it must call this
    /// (MPI-IO driver, collective metadata and transfers).
    public init(path: String, mode: Mode, comm: Communicator? = nil) throws {
        self.path = path
        self.isParallel = comm != nil
        let id: hid_t = try HDF5Library.locked {
            let fapl = try HDF5Library.check(H5Pcreate(nsh5_p_file_access()), "H5Pcreate(file access)", path: path)
            defer { H5Pclose(fapl) }
            if let comm {
                guard HDF5Library.isParallel else {
                    throw HDF5Error(call: "H5Pset_fapl_mpio", path: path, reason: "the linked HDF5 library is not a parallel build")
                }
                try HDF5Library.check(H5Pset_fapl_mpio(fapl, comm.handle, nsmpi_info_null()), "H5Pset_fapl_mpio", path: path)
                try HDF5Library.check(H5Pset_all_coll_metadata_ops(fapl, true), "H5Pset_all_coll_metadata_ops", path: path)
                try HDF5Library.check(H5Pset_coll_metadata_write(fapl, true), "H5Pset_coll_metadata_write", path: path)
            }
            switch mode {
            case .readOnly, .readWrite:
                guard FileManager.default.fileExists(atPath: path) else {
                    throw HDF5Error(call: "H5Fopen", path: path, reason: "no such file")
                }
                if H5Fis_hdf5(path) <= 0 {
                    _ = HDF5Library.takeErrorStack()
                    throw HDF5Error(call: "H5Fopen", path: path, reason: "not an HDF5 file")
                }
                let flags = mode == .readOnly ? nsh5_f_acc_rdonly() : nsh5_f_acc_rdwr()
                return try HDF5Library.check(H5Fopen(path, flags, fapl), "H5Fopen", path: path)
            case .truncate, .createNew:
                let flags = mode == .truncate ? nsh5_f_acc_trunc() : nsh5_f_acc_excl()
                return try HDF5Library.check(H5Fcreate(path, flags, nsh5_p_default(), fapl), "H5Fcreate", path: path)
            }
        }
        super.init(id: id, file: path, name: "/")
        if comm != nil {
            transferCollective = try makeTransfer(H5FD_MPIO_COLLECTIVE)
            transferIndependent = try makeTransfer(H5FD_MPIO_INDEPENDENT)
        }
    }

    private func makeTransfer(_ mode: H5FD_mpio_xfer_t) throws -> hid_t {
        try HDF5Library.locked {
            let p = try HDF5Library.check(H5Pcreate(nsh5_p_dataset_xfer()), "H5Pcreate(transfer)", path: path)
            try HDF5Library.check(H5Pset_dxpl_mpio(p, mode), "H5Pset_dxpl_mpio", path: path)
            return p
        }
    }

    /// The transfer property list for reads and writes of this file.
    func transfer(collective: Bool) -> hid_t {
        guard isParallel else { return nsh5_p_default() }
        return collective ? transferCollective : transferIndependent
    }

    public func flush() throws {
        try HDF5Library.locked {
            _ = try HDF5Library.check(H5Fflush(id, H5F_SCOPE_GLOBAL), "H5Fflush", path: path)
        }
    }

    /// Closes the file now (collective for parallel files); later use throws.
    public func close() throws {
        try HDF5Library.locked {
            guard id >= 0 else { return }
            for object in openObjects { object.value?.closeHandle() }
            openObjects.removeAll()
            for p in [transferCollective, transferIndependent] where p >= 0 { H5Pclose(p) }
            transferCollective = -1
            transferIndependent = -1
            let rc = H5Fclose(id)
            id = -1
            try HDF5Library.check(rc, "H5Fclose", path: path)
        }
    }

    deinit { try? close() }

    override var fileObject: HDF5File? { self }
}

struct WeakObject {
    weak var value: HDF5Object?
    init(_ value: HDF5Object) { self.value = value }
}
