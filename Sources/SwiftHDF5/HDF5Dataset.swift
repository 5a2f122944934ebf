import CHDF5

/// A dataset: whole or hyperslab reads and writes with type conversion.
public final class HDF5Dataset: HDF5Object, @unchecked Sendable {
    private let owner: HDF5Location

    init(id: hid_t, file: String, name: String, owner: HDF5Location) {
        self.owner = owner
        super.init(id: id, file: file, name: name)
    }

    deinit { closeHandle() }

    override func closeHandle() {
        HDF5Library.locked {
            if id >= 0 { H5Dclose(id) }
            id = -1
        }
    }

    /// The type as stored in the file, as a reader would name it.
    public enum StoredType: Equatable, Sendable, CustomStringConvertible {
        case float(bits: Int)
        case integer(signed: Bool, bits: Int)
        case complex(bits: Int)
        case string
        case other(String)

        public var description: String {
            switch self {
            case .float(let b): "float\(b)"
            case .integer(let s, let b): "\(s ? "int" : "uint")\(b)"
            case .complex(let b): "complex\(b)"
            case .string: "string"
            case .other(let s): s
            }
        }
    }

    public var shape: [Int] {
        get throws {
            try HDF5Library.locked {
                let space = try HDF5Library.check(H5Dget_space(id), "H5Dget_space", path: objectPath)
                defer { H5Sclose(space) }
                let rank = Int(H5Sget_simple_extent_ndims(space))
                var dims = [hsize_t](repeating: 0, count: rank)
                H5Sget_simple_extent_dims(space, &dims, nil)
                return dims.map { Int($0) }
            }
        }
    }

    public var storedType: StoredType {
        get throws {
            try HDF5Library.locked {
                let t = try HDF5Library.check(H5Dget_type(id), "H5Dget_type", path: objectPath)
                defer { H5Tclose(t) }
                let size = H5Tget_size(t) * 8
                switch H5Tget_class(t) {
                case H5T_FLOAT: return .float(bits: size)
                case H5T_INTEGER: return .integer(signed: H5Tget_sign(t) == H5T_SGN_2, bits: size)
                case H5T_STRING: return .string
                case H5T_COMPOUND:
                    if H5Tget_nmembers(t) == 2, H5Tget_member_index(t, "r") >= 0, H5Tget_member_index(t, "i") >= 0 {
                        return .complex(bits: size)
                    }
                    _ = HDF5Library.takeErrorStack()
                    return .other("compound")
                default: return .other("class \(H5Tget_class(t).rawValue)")
                }
            }
        }
    }

    /// Writes the whole dataset.
    public func write<T: HDF5Element>(_ values: [T], collective: Bool = true) throws {
        let count = try shape.reduce(1, *)
        guard values.count == count else {
            throw HDF5Error(call: "H5Dwrite", path: objectPath, reason: "\(values.count) values for a dataset of \(count)")
        }
        // An empty dataset holds nothing to write (and H5Dwrite refuses a null buffer).
        if count == 0 { return }
        try values.withUnsafeBytes { try writeRaw(typeID: T.hdf5Type, $0.baseAddress, collective: collective) }
    }

    func writeRaw(typeID: hid_t, _ bytes: ContiguousArray<CChar>) throws {
        try bytes.withUnsafeBytes { try writeRaw(typeID: typeID, $0.baseAddress, collective: true) }
    }

    private func writeRaw(typeID: hid_t, _ pointer: UnsafeRawPointer?, collective: Bool) throws {
        try HDF5Library.locked {
            let xfer = owner.fileObject?.transfer(collective: collective) ?? nsh5_p_default()
            try HDF5Library.check(H5Dwrite(id, typeID, nsh5_s_all(), nsh5_s_all(), xfer, pointer), "H5Dwrite", path: objectPath)
        }
    }

    /// Writes `values` into the block at `offset` of extent `count`. In a
    /// parallel file every rank calls this when `collective` (a rank with
    /// nothing to write passes a zero count).
    public func write<T: HDF5Element>(_ values: UnsafeBufferPointer<T>, offset: [Int], count: [Int], collective: Bool = true) throws {
        try withSelection(offset: offset, count: count, elements: values.count, call: "H5Dwrite") { mem, file in
            let xfer = owner.fileObject?.transfer(collective: collective) ?? nsh5_p_default()
            try HDF5Library.check(H5Dwrite(id, T.hdf5Type, mem, file, xfer, values.baseAddress),
                                  "H5Dwrite(offset \(offset), count \(count))", path: objectPath)
        }
    }

    public func write<T: HDF5Element>(_ values: [T], offset: [Int], count: [Int], collective: Bool = true) throws {
        try values.withUnsafeBufferPointer { try write($0, offset: offset, count: count, collective: collective) }
    }

    /// Reads the whole dataset, converted to `T`.
    public func read<T: HDF5Element>(_ type: T.Type = T.self, collective: Bool = false) throws -> [T] {
        let s = try shape
        return try read(T.self, offset: s.map { _ in 0 }, count: s, collective: collective)
    }

    /// Reads the block at `offset` of extent `count`, converted to `T`.
    public func read<T: HDF5Element>(_ type: T.Type = T.self, offset: [Int], count: [Int], collective: Bool = false) throws -> [T] {
        let n = count.reduce(1, *)
        if n == 0 { return [] }
        return try [T](unsafeUninitializedCapacity: n) { buf, initialized in
            try read(into: buf, offset: offset, count: count, collective: collective)
            initialized = n
        }
    }

    public func read<T: HDF5Element>(into buffer: UnsafeMutableBufferPointer<T>, offset: [Int], count: [Int], collective: Bool = false) throws {
        try withSelection(offset: offset, count: count, elements: buffer.count, call: "H5Dread") { mem, file in
            let xfer = owner.fileObject?.transfer(collective: collective) ?? nsh5_p_default()
            try HDF5Library.check(H5Dread(id, T.hdf5Type, mem, file, xfer, buffer.baseAddress),
                                  "H5Dread(offset \(offset), count \(count)) as \(T.self)", path: objectPath)
        }
    }

    public func readString() throws -> String {
        try HDF5Library.locked {
            let stored = try HDF5Library.check(H5Dget_type(id), "H5Dget_type", path: objectPath)
            defer { H5Tclose(stored) }
            let space = try HDF5Library.check(H5Dget_space(id), "H5Dget_space", path: objectPath)
            defer { H5Sclose(space) }
            let variableBytes = { (mem: hid_t) -> Int? in
                var bytes: hsize_t = 0
                return H5Dvlen_get_buf_size(self.id, mem, space, &bytes) >= 0 ? Int(bytes) : nil
            }
            return try HDF5String.read(stored: stored, space: space, path: objectPath, variableBytes: variableBytes) { mem, buffer in
                try HDF5Library.check(H5Dread(id, mem, nsh5_s_all(), nsh5_s_all(), nsh5_p_default(), buffer),
                                      "H5Dread as string", path: objectPath)
            }
        }
    }

    /// Changes the extent of a chunked dataset (within its maximum shape).
    public func resize(_ newShape: [Int]) throws {
        try HDF5Library.locked {
            var dims = newShape.map { hsize_t($0) }
            try HDF5Library.check(H5Dset_extent(id, &dims), "H5Dset_extent(\(newShape))", path: objectPath)
        }
    }

    private func withSelection(offset: [Int], count: [Int], elements: Int, call: String,
                               _ body: (hid_t, hid_t) throws -> Void) throws {
        let s = try shape
        guard offset.count == s.count, count.count == s.count else {
            throw HDF5Error(call: call, path: objectPath, reason: "offset \(offset) / count \(count) do not match rank \(s.count) of shape \(s)")
        }
        for d in s.indices where offset[d] < 0 || count[d] < 0 || offset[d] + count[d] > s[d] {
            throw HDF5Error(call: call, path: objectPath, reason: "block at \(offset) of \(count) lies outside shape \(s)")
        }
        let n = count.reduce(1, *)
        guard elements == n else {
            throw HDF5Error(call: call, path: objectPath, reason: "buffer of \(elements) values for a block of \(n)")
        }
        try HDF5Library.locked {
            let file = try HDF5Library.check(H5Dget_space(id), "H5Dget_space", path: objectPath)
            defer { H5Sclose(file) }
            var memDims = [hsize_t(Swift.max(1, n))]
            let mem = try HDF5Library.check(H5Screate_simple(1, &memDims, nil), "H5Screate_simple", path: objectPath)
            defer { H5Sclose(mem) }
            if n == 0 {
                H5Sselect_none(file)
                H5Sselect_none(mem)
            } else if !s.isEmpty {
                var start = offset.map { hsize_t($0) }
                var extent = count.map { hsize_t($0) }
                try HDF5Library.check(H5Sselect_hyperslab(file, H5S_SELECT_SET, &start, nil, &extent, nil),
                                      "H5Sselect_hyperslab", path: objectPath)
            }
            try body(mem, file)
        }
    }
}
