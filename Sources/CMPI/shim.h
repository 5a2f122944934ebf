// Accessors for MPI handles and constants that Swift cannot import.
// OpenMPI defines them as macros over global structs (pointer handles);
// MPICH and Cray MPICH define them as integer constants. Both compile here.
#ifndef NS_CMPI_SHIM_H
#define NS_CMPI_SHIM_H
#include <mpi.h>

#define NSMPI_INLINE static inline __attribute__((always_inline))

NSMPI_INLINE MPI_Comm nsmpi_comm_world(void) { return MPI_COMM_WORLD; }
NSMPI_INLINE MPI_Comm nsmpi_comm_self(void) { return MPI_COMM_SELF; }
NSMPI_INLINE MPI_Comm nsmpi_comm_null(void) { return MPI_COMM_NULL; }
NSMPI_INLINE MPI_Info nsmpi_info_null(void) { return MPI_INFO_NULL; }
NSMPI_INLINE MPI_Request nsmpi_request_null(void) { return MPI_REQUEST_NULL; }
NSMPI_INLINE MPI_Errhandler nsmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
NSMPI_INLINE MPI_Status *nsmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
NSMPI_INLINE MPI_Status *nsmpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }
NSMPI_INLINE void *nsmpi_in_place(void) { return MPI_IN_PLACE; }

NSMPI_INLINE MPI_Datatype nsmpi_byte(void) { return MPI_BYTE; }
NSMPI_INLINE MPI_Datatype nsmpi_float(void) { return MPI_FLOAT; }
NSMPI_INLINE MPI_Datatype nsmpi_double(void) { return MPI_DOUBLE; }
NSMPI_INLINE MPI_Datatype nsmpi_c_float_complex(void) { return MPI_C_FLOAT_COMPLEX; }
NSMPI_INLINE MPI_Datatype nsmpi_int32(void) { return MPI_INT32_T; }
NSMPI_INLINE MPI_Datatype nsmpi_int64(void) { return MPI_INT64_T; }
NSMPI_INLINE MPI_Datatype nsmpi_uint16(void) { return MPI_UINT16_T; }
NSMPI_INLINE MPI_Datatype nsmpi_uint32(void) { return MPI_UINT32_T; }
NSMPI_INLINE MPI_Datatype nsmpi_uint64(void) { return MPI_UINT64_T; }

NSMPI_INLINE MPI_Op nsmpi_op_sum(void) { return MPI_SUM; }
NSMPI_INLINE MPI_Op nsmpi_op_max(void) { return MPI_MAX; }
NSMPI_INLINE MPI_Op nsmpi_op_min(void) { return MPI_MIN; }

NSMPI_INLINE int nsmpi_any_source(void) { return MPI_ANY_SOURCE; }
NSMPI_INLINE int nsmpi_any_tag(void) { return MPI_ANY_TAG; }
NSMPI_INLINE int nsmpi_proc_null(void) { return MPI_PROC_NULL; }
NSMPI_INLINE int nsmpi_undefined(void) { return MPI_UNDEFINED; }
NSMPI_INLINE int nsmpi_success(void) { return MPI_SUCCESS; }
NSMPI_INLINE int nsmpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
NSMPI_INLINE int nsmpi_max_processor_name(void) { return MPI_MAX_PROCESSOR_NAME; }
NSMPI_INLINE int nsmpi_max_library_version_string(void) { return MPI_MAX_LIBRARY_VERSION_STRING; }
NSMPI_INLINE int nsmpi_thread_single(void) { return MPI_THREAD_SINGLE; }
NSMPI_INLINE int nsmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
NSMPI_INLINE int nsmpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
NSMPI_INLINE int nsmpi_thread_multiple(void) { return MPI_THREAD_MULTIPLE; }

// Status fields differ in name between implementations only by convention;
// these keep Swift away from the struct layout.
NSMPI_INLINE int nsmpi_status_source(const MPI_Status *s) { return s->MPI_SOURCE; }
NSMPI_INLINE int nsmpi_status_tag(const MPI_Status *s) { return s->MPI_TAG; }

#endif
