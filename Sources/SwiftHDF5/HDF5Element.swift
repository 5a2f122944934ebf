import CHDF5
import Numerics

/// Element types that HDF5 datasets and attributes hold in memory. HDF5
/// converts between them and the stored type on read (uint16 file data
/// reads as Float, float64 as Float, and so on).
public protocol HDF5Element {
    /// The in-memory type id; owned by the library, never closed.
    static var hdf5Type: hid_t { get }
}

extension Float: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_float() } }
extension Double: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_double() } }
extension UInt8: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_uint8() } }
extension UInt16: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_uint16() } }
extension UInt32: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_uint32() } }
extension Int32: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_int32() } }
extension Int64: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_int64() } }
extension Int: HDF5Element { public static var hdf5Type: hid_t { nsh5_t_native_int64() } }

/// Complex numbers as the compound {r, i} that h5py and CXI readers expect.
extension Complex: HDF5Element where RealType == Float {
    public static var hdf5Type: hid_t { complexFloatType }
}

private let complexFloatType: hid_t = HDF5Library.locked {
    let t = H5Tcreate(H5T_COMPOUND, MemoryLayout<Complex<Float>>.stride)
    H5Tinsert(t, "r", 0, nsh5_t_native_float())
    H5Tinsert(t, "i", MemoryLayout<Float>.stride, nsh5_t_native_float())
    return t
}
