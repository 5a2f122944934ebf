import CMPI

// OpenMPI's handles are pointers (imported as optionals when passed by
// address); MPICH's are plain ints. Package.swift defines NS_MPICH for the
// latter so the same sources build against both.
#if NS_MPICH
package typealias CommSlot = MPI_Comm
package typealias RequestSlot = MPI_Request
#else
package typealias CommSlot = MPI_Comm?
package typealias RequestSlot = MPI_Request?
#endif
