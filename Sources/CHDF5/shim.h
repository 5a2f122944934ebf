// HDF5's predefined types, property classes and flags are macros that call
// H5open() and read library globals; Swift sees none of them.
#ifndef NS_CHDF5_SHIM_H
#define NS_CHDF5_SHIM_H
#include <hdf5.h>

#define NSH5_INLINE static inline __attribute__((always_inline))

NSH5_INLINE hid_t nsh5_p_default(void) { return H5P_DEFAULT; }
NSH5_INLINE hid_t nsh5_s_all(void) { return H5S_ALL; }
NSH5_INLINE hid_t nsh5_e_default(void) { return H5E_DEFAULT; }
NSH5_INLINE hsize_t nsh5_s_unlimited(void) { return H5S_UNLIMITED; }

NSH5_INLINE unsigned nsh5_f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
NSH5_INLINE unsigned nsh5_f_acc_rdwr(void) { return H5F_ACC_RDWR; }
NSH5_INLINE unsigned nsh5_f_acc_trunc(void) { return H5F_ACC_TRUNC; }
NSH5_INLINE unsigned nsh5_f_acc_excl(void) { return H5F_ACC_EXCL; }

NSH5_INLINE hid_t nsh5_p_file_access(void) { return H5P_FILE_ACCESS; }
NSH5_INLINE hid_t nsh5_p_file_create(void) { return H5P_FILE_CREATE; }
NSH5_INLINE hid_t nsh5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
NSH5_INLINE hid_t nsh5_p_dataset_xfer(void) { return H5P_DATASET_XFER; }
NSH5_INLINE hid_t nsh5_p_link_create(void) { return H5P_LINK_CREATE; }

NSH5_INLINE hid_t nsh5_t_native_float(void) { return H5T_NATIVE_FLOAT; }
NSH5_INLINE hid_t nsh5_t_native_double(void) { return H5T_NATIVE_DOUBLE; }
NSH5_INLINE hid_t nsh5_t_native_uint8(void) { return H5T_NATIVE_UINT8; }
NSH5_INLINE hid_t nsh5_t_native_uint16(void) { return H5T_NATIVE_UINT16; }
NSH5_INLINE hid_t nsh5_t_native_uint32(void) { return H5T_NATIVE_UINT32; }
NSH5_INLINE hid_t nsh5_t_native_int32(void) { return H5T_NATIVE_INT32; }
NSH5_INLINE hid_t nsh5_t_native_int64(void) { return H5T_NATIVE_INT64; }
NSH5_INLINE hid_t nsh5_t_c_s1(void) { return H5T_C_S1; }

NSH5_INLINE int nsh5_have_parallel(void) {
#ifdef H5_HAVE_PARALLEL
    return 1;
#else
    return 0;
#endif
}

#endif
