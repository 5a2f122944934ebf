import CMPI
import Numerics

/// Element types that MPI can move and reduce.
public protocol MPIDatatype {
    static var mpiType: MPI_Datatype { get }
}

extension UInt8: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_byte() } }
extension UInt16: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_uint16() } }
extension UInt32: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_uint32() } }
extension UInt64: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_uint64() } }
extension Int32: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_int32() } }
extension Int64: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_int64() } }
extension Int: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_int64() } }
extension Float: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_float() } }
extension Double: MPIDatatype { public static var mpiType: MPI_Datatype { nsmpi_double() } }
// Complex<Float> is two Floats in memory, the layout of C's float _Complex.
extension Complex: MPIDatatype where RealType == Float {
    public static var mpiType: MPI_Datatype { nsmpi_c_float_complex() }
}

/// Reduction operations.
public enum ReduceOp: Sendable {
    case sum, max, min

    var handle: MPI_Op {
        switch self {
        case .sum: nsmpi_op_sum()
        case .max: nsmpi_op_max()
        case .min: nsmpi_op_min()
        }
    }
}
