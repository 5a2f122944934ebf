// FFTW's planner flags and signs are macros with casts; give Swift plain accessors.
#ifndef NS_CFFTW_SHIM_H
#define NS_CFFTW_SHIM_H
#include <fftw3.h>

#define NSFFTW_INLINE static inline __attribute__((always_inline))

NSFFTW_INLINE int nsfftw_forward(void) { return FFTW_FORWARD; }
NSFFTW_INLINE int nsfftw_backward(void) { return FFTW_BACKWARD; }
NSFFTW_INLINE unsigned nsfftw_estimate(void) { return FFTW_ESTIMATE; }
NSFFTW_INLINE unsigned nsfftw_measure(void) { return FFTW_MEASURE; }
NSFFTW_INLINE unsigned nsfftw_patient(void) { return FFTW_PATIENT; }
NSFFTW_INLINE unsigned nsfftw_wisdom_only(void) { return FFTW_WISDOM_ONLY; }

NSFFTW_INLINE const char *nsfftw_version(void) { return fftwf_version; }

#endif
