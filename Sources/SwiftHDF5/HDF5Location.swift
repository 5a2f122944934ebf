import CHDF5

/// A file or group: where groups, datasets, links and attributes live.
/// Paths may be relative ("a/b") or absolute ("/entry_1/data_1").
public class HDF5Location: HDF5Object, @unchecked Sendable {
    var fileObject: HDF5File? { nil }

    /// Lets the file close this object first when the file is closed.
    func register<O: HDF5Object>(_ object: O) -> O {
        fileObject?.openObjects.append(WeakObject(object))
        return object
    }

    func fullName(_ path: String) -> String {
        path.hasPrefix("/") ? path : (name == "/" ? "/" + path : name + "/" + path)
    }

    func where_(_ path: String) -> String { "\(file):\(fullName(path))" }

    /// True when every component of `path` exists (soft links are not followed
    /// past the last component).
    public func exists(_ path: String) -> Bool {
        HDF5Library.locked {
            var prefix = path.hasPrefix("/") ? "/" : ""
            for part in path.split(separator: "/") {
                prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
                if H5Lexists(id, prefix, nsh5_p_default()) <= 0 {
                    _ = HDF5Library.takeErrorStack()
                    return false
                }
            }
            return true
        }
    }

    /// Creates a group and any missing parents; returns the existing group if there is one.
    @discardableResult
    public func createGroup(_ path: String) throws -> HDF5Group {
        if exists(path) { return try openGroup(path) }
        return try HDF5Library.locked {
            let lcpl = try HDF5Library.check(H5Pcreate(nsh5_p_link_create()), "H5Pcreate(link)", path: where_(path))
            defer { H5Pclose(lcpl) }
            H5Pset_create_intermediate_group(lcpl, 1)
            let g = try HDF5Library.check(H5Gcreate2(id, path, lcpl, nsh5_p_default(), nsh5_p_default()),
                                          "H5Gcreate2", path: where_(path))
            return register(HDF5Group(id: g, file: file, name: fullName(path), owner: self))
        }
    }

    public func openGroup(_ path: String) throws -> HDF5Group {
        try HDF5Library.locked {
            guard exists(path) else { throw HDF5Error(call: "H5Gopen2", path: where_(path), reason: "no such group") }
            let g = try HDF5Library.check(H5Gopen2(id, path, nsh5_p_default()), "H5Gopen2", path: where_(path))
            return register(HDF5Group(id: g, file: file, name: fullName(path), owner: self))
        }
    }

    /// Names of the links directly under this location, in creation-independent (name) order.
    public func children() throws -> [String] {
        try HDF5Library.locked {
            final class Names { var items: [String] = [] }
            let names = Names()
            let box = Unmanaged.passRetained(names)
            defer { box.release() }
            var index: hsize_t = 0
            try HDF5Library.check(H5Literate(id, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, data in
                guard let name, let data else { return 0 }
                Unmanaged<Names>.fromOpaque(data).takeUnretainedValue().items.append(String(cString: name))
                return 0
            }, box.toOpaque()), "H5Literate", path: objectPath)
            return names.items
        }
    }

    /// Creates a dataset of element type `T`. A nil entry in `maxShape` is
    /// unlimited (extendible; needs `chunks`).
    @discardableResult
    public func createDataset<T: HDF5Element>(_ path: String, of type: T.Type, shape: [Int],
                                              maxShape: [Int?]? = nil, chunks: [Int]? = nil) throws -> HDF5Dataset {
        try createDataset(path, typeID: T.hdf5Type, shape: shape, maxShape: maxShape, chunks: chunks)
    }

    func createDataset(_ path: String, typeID: hid_t, shape: [Int], maxShape: [Int?]?, chunks: [Int]?) throws -> HDF5Dataset {
        try HDF5Library.locked {
            if let maxShape, maxShape.count != shape.count {
                throw HDF5Error(call: "H5Dcreate2", path: where_(path), reason: "maxShape \(maxShape) and shape \(shape) differ in rank")
            }
            if let chunks, chunks.count != shape.count || chunks.contains(where: { $0 <= 0 }) {
                throw HDF5Error(call: "H5Dcreate2", path: where_(path), reason: "chunks \(chunks) do not fit shape \(shape)")
            }
            var dims = shape.map { hsize_t($0) }
            var maxDims = (maxShape ?? shape).map { $0.map { hsize_t($0) } ?? nsh5_s_unlimited() }
            let space = try HDF5Library.check(H5Screate_simple(Int32(dims.count), &dims, &maxDims),
                                              "H5Screate_simple(\(shape))", path: where_(path))
            defer { H5Sclose(space) }
            let dcpl = try HDF5Library.check(H5Pcreate(nsh5_p_dataset_create()), "H5Pcreate(dataset)", path: where_(path))
            defer { H5Pclose(dcpl) }
            if let chunks {
                var c = chunks.map { hsize_t($0) }
                try HDF5Library.check(H5Pset_chunk(dcpl, Int32(c.count), &c), "H5Pset_chunk(\(chunks))", path: where_(path))
            }
            let lcpl = try HDF5Library.check(H5Pcreate(nsh5_p_link_create()), "H5Pcreate(link)", path: where_(path))
            defer { H5Pclose(lcpl) }
            H5Pset_create_intermediate_group(lcpl, 1)
            let d = try HDF5Library.check(H5Dcreate2(id, path, typeID, space, lcpl, dcpl, nsh5_p_default()),
                                          "H5Dcreate2", path: where_(path))
            return register(HDF5Dataset(id: d, file: file, name: fullName(path), owner: self))
        }
    }

    public func openDataset(_ path: String) throws -> HDF5Dataset {
        try HDF5Library.locked {
            guard exists(path) else { throw HDF5Error(call: "H5Dopen2", path: where_(path), reason: "no such dataset") }
            let d = try HDF5Library.check(H5Dopen2(id, path, nsh5_p_default()), "H5Dopen2", path: where_(path))
            return register(HDF5Dataset(id: d, file: file, name: fullName(path), owner: self))
        }
    }

    /// Writes a whole array as a new dataset (serially, or collectively with
    /// identical data from every rank of a parallel file).
    @discardableResult
    public func write<T: HDF5Element>(_ values: [T], to path: String, shape: [Int]? = nil) throws -> HDF5Dataset {
        let shape = shape ?? [values.count]
        guard shape.reduce(1, *) == values.count else {
            throw HDF5Error(call: "write", path: where_(path), reason: "\(values.count) values do not fill shape \(shape)")
        }
        let d = try createDataset(path, of: T.self, shape: shape)
        try d.write(values)
        return d
    }

    /// Writes a scalar value as a new dataset.
    @discardableResult
    public func write<T: HDF5Element>(scalar value: T, to path: String) throws -> HDF5Dataset {
        try write([value], to: path, shape: [])
    }

    public func read<T: HDF5Element>(_ path: String, as type: T.Type = T.self) throws -> [T] {
        try openDataset(path).read(T.self)
    }

    public func readScalar<T: HDF5Element>(_ path: String, as type: T.Type = T.self) throws -> T {
        let values = try read(path, as: T.self)
        guard values.count == 1 else {
            throw HDF5Error(call: "H5Dread", path: where_(path), reason: "expected one value, found \(values.count)")
        }
        return values[0]
    }

    /// Writes a UTF-8 string as a scalar dataset (fixed length, null-terminated).
    @discardableResult
    public func write(string: String, to path: String) throws -> HDF5Dataset {
        try HDF5Library.locked {
            let type = try HDF5String.fixedType(for: string, path: where_(path))
            defer { H5Tclose(type) }
            let d = try createDataset(path, typeID: type, shape: [], maxShape: nil, chunks: nil)
            try d.writeRaw(typeID: type, string.utf8CString)
            return d
        }
    }

    public func readString(_ path: String) throws -> String {
        try openDataset(path).readString()
    }

    /// A soft link at `path` pointing to `target` (an absolute path).
    public func softLink(_ path: String, to target: String) throws {
        try HDF5Library.locked {
            let lcpl = try HDF5Library.check(H5Pcreate(nsh5_p_link_create()), "H5Pcreate(link)", path: where_(path))
            defer { H5Pclose(lcpl) }
            H5Pset_create_intermediate_group(lcpl, 1)
            try HDF5Library.check(H5Lcreate_soft(target, id, path, lcpl, nsh5_p_default()),
                                  "H5Lcreate_soft(-> \(target))", path: where_(path))
        }
    }

    /// The target of a soft link, or nil when `path` is not one.
    public func softLinkTarget(_ path: String) throws -> String? {
        try HDF5Library.locked {
            var info = H5L_info_t()
            try HDF5Library.check(H5Lget_info(id, path, &info, nsh5_p_default()), "H5Lget_info", path: where_(path))
            guard info.type == H5L_TYPE_SOFT else { return nil }
            let size = Int(info.u.val_size)
            var buffer = [CChar](repeating: 0, count: size + 1)
            try HDF5Library.check(H5Lget_val(id, path, &buffer, size + 1, nsh5_p_default()), "H5Lget_val", path: where_(path))
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}

/// A group in a file; keeps its parent alive.
public final class HDF5Group: HDF5Location, @unchecked Sendable {
    private let owner: HDF5Location

    init(id: hid_t, file: String, name: String, owner: HDF5Location) {
        self.owner = owner
        super.init(id: id, file: file, name: name)
    }

    deinit { closeHandle() }

    override func closeHandle() {
        HDF5Library.locked {
            if id >= 0 { H5Gclose(id) }
            id = -1
        }
    }

    override var fileObject: HDF5File? { owner.fileObject }
}
