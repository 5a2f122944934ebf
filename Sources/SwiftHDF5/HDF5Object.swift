import CHDF5

/// Anything with an HDF5 id that can carry attributes.
public class HDF5Object: @unchecked Sendable {
    var id: hid_t
    /// The file's path on disk.
    public let file: String
    /// The object's absolute path inside the file.
    public let name: String

    init(id: hid_t, file: String, name: String) {
        self.id = id
        self.file = file
        self.name = name
    }

    var objectPath: String { "\(file):\(name)" }

    /// Releases the HDF5 id (once); subclasses name the matching close call.
    func closeHandle() {}

    public func hasAttribute(_ attribute: String) -> Bool {
        HDF5Library.locked {
            let r = H5Aexists(id, attribute)
            if r < 0 { _ = HDF5Library.takeErrorStack() }
            return r > 0
        }
    }

    /// Sets a numeric attribute: a scalar for one value, else a 1-D array.
    public func setAttribute<T: HDF5Element>(_ attribute: String, _ values: [T]) throws {
        try setAttribute(attribute, typeID: T.hdf5Type, shape: values.count == 1 ? [] : [values.count]) { a, t in
            try values.withUnsafeBytes { raw in
                try HDF5Library.check(H5Awrite(a, t, raw.baseAddress), "H5Awrite", path: "\(objectPath)@\(attribute)")
            }
        }
    }

    public func setAttribute<T: HDF5Element>(_ attribute: String, scalar value: T) throws {
        try setAttribute(attribute, [value])
    }

    public func setAttribute(_ attribute: String, string value: String) throws {
        let where_ = "\(objectPath)@\(attribute)"
        try HDF5Library.locked {
            let type = try HDF5String.fixedType(for: value, path: where_)
            defer { H5Tclose(type) }
            try setAttribute(attribute, typeID: type, shape: []) { a, t in
                let bytes = value.utf8CString
                try bytes.withUnsafeBytes { raw in
                    _ = try HDF5Library.check(H5Awrite(a, t, raw.baseAddress), "H5Awrite", path: where_)
                }
            }
        }
    }

    private func setAttribute(_ attribute: String, typeID: hid_t, shape: [Int], write: (hid_t, hid_t) throws -> Void) throws {
        let where_ = "\(objectPath)@\(attribute)"
        try HDF5Library.locked {
            if H5Aexists(id, attribute) > 0 {
                try HDF5Library.check(H5Adelete(id, attribute), "H5Adelete", path: where_)
            }
            var dims = shape.map { hsize_t($0) }
            let space = shape.isEmpty
                ? try HDF5Library.check(H5Screate(H5S_SCALAR), "H5Screate", path: where_)
                : try HDF5Library.check(H5Screate_simple(Int32(dims.count), &dims, nil), "H5Screate_simple", path: where_)
            defer { H5Sclose(space) }
            let a = try HDF5Library.check(H5Acreate2(id, attribute, typeID, space, nsh5_p_default(), nsh5_p_default()),
                                          "H5Acreate2", path: where_)
            defer { H5Aclose(a) }
            try write(a, typeID)
        }
    }

    public func attribute<T: HDF5Element>(_ attribute: String, as type: T.Type = T.self) throws -> [T] {
        let where_ = "\(objectPath)@\(attribute)"
        return try HDF5Library.locked {
            let a = try openAttribute(attribute)
            defer { H5Aclose(a) }
            let space = try HDF5Library.check(H5Aget_space(a), "H5Aget_space", path: where_)
            defer { H5Sclose(space) }
            let n = Int(H5Sget_simple_extent_npoints(space))
            return try [T](unsafeUninitializedCapacity: n) { buf, initialized in
                try HDF5Library.check(H5Aread(a, T.hdf5Type, buf.baseAddress), "H5Aread as \(T.self)", path: where_)
                initialized = n
            }
        }
    }

    public func stringAttribute(_ attribute: String) throws -> String {
        let where_ = "\(objectPath)@\(attribute)"
        return try HDF5Library.locked {
            let a = try openAttribute(attribute)
            defer { H5Aclose(a) }
            let stored = try HDF5Library.check(H5Aget_type(a), "H5Aget_type", path: where_)
            defer { H5Tclose(stored) }
            let space = try HDF5Library.check(H5Aget_space(a), "H5Aget_space", path: where_)
            defer { H5Sclose(space) }
            return try HDF5String.read(stored: stored, space: space, path: where_) { memType, buffer in
                try HDF5Library.check(H5Aread(a, memType, buffer), "H5Aread as string", path: where_)
            }
        }
    }

    private func openAttribute(_ attribute: String) throws -> hid_t {
        guard hasAttribute(attribute) else {
            throw HDF5Error(call: "H5Aopen", path: "\(objectPath)@\(attribute)", reason: "no such attribute")
        }
        return try HDF5Library.check(H5Aopen(id, attribute, nsh5_p_default()), "H5Aopen", path: "\(objectPath)@\(attribute)")
    }
}

/// Fixed- and variable-length string handling shared by datasets and attributes.
enum HDF5String {
    static func fixedType(for value: String, path: String) throws -> hid_t {
        let t = try HDF5Library.check(H5Tcopy(nsh5_t_c_s1()), "H5Tcopy", path: path)
        H5Tset_size(t, value.utf8.count + 1)
        H5Tset_strpad(t, H5T_STR_NULLTERM)
        H5Tset_cset(t, H5T_CSET_UTF8)
        return t
    }

    /// The longest string read (a file's metadata, never its data).
    static let maxBytes = 16 << 20

    /// Reads one string stored as fixed or variable length. `space` must hold exactly one
    /// value (the read fills one string's buffer); `variableBytes` tells a variable-length
    /// string's size before it is read, where the library can.
    static func read(stored: hid_t, space: hid_t, path: String, variableBytes: ((hid_t) -> Int?)? = nil,
                     read: (hid_t, UnsafeMutableRawPointer) throws -> Void) throws -> String {
        guard H5Tget_class(stored) == H5T_STRING else {
            throw HDF5Error(call: "read string", path: path, reason: "the stored type is not a string")
        }
        let values = H5Sget_simple_extent_npoints(space)
        guard values == 1 else {
            throw HDF5Error(call: "read string", path: path, reason: "holds \(values) values where one string is expected")
        }
        let mem = try HDF5Library.check(H5Tcopy(nsh5_t_c_s1()), "H5Tcopy", path: path)
        defer { H5Tclose(mem) }
        H5Tset_cset(mem, H5Tget_cset(stored))  // HDF5 does not convert between ASCII and UTF-8
        if H5Tis_variable_str(stored) > 0 {
            H5Tset_size(mem, Int(bitPattern: UInt(bitPattern: -1)))  // H5T_VARIABLE
            if let bytes = variableBytes?(mem), bytes > maxBytes {
                throw HDF5Error(call: "read string", path: path, reason: "a string of \(bytes) bytes, over the \(maxBytes) read")
            }
            var pointer: UnsafeMutablePointer<CChar>? = nil
            try read(mem, &pointer)
            defer { if let pointer { H5free_memory(pointer) } }
            return pointer.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(stored)
        guard size <= maxBytes else {
            throw HDF5Error(call: "read string", path: path, reason: "a string of \(size) bytes, over the \(maxBytes) read")
        }
        H5Tset_size(mem, size + 1)
        H5Tset_strpad(mem, H5T_STR_NULLTERM)
        var buffer = [CChar](repeating: 0, count: size + 1)
        try buffer.withUnsafeMutableBytes { try read(mem, $0.baseAddress!) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
