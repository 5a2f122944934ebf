// libpng's simplified API (no setjmp, which Swift cannot survive); its
// format flags and size macro are macros.
#ifndef NS_CPNG_SHIM_H
#define NS_CPNG_SHIM_H
#include <png.h>

#define NSPNG_INLINE static inline __attribute__((always_inline))

NSPNG_INLINE png_uint_32 nspng_image_version(void) { return PNG_IMAGE_VERSION; }
NSPNG_INLINE png_uint_32 nspng_format_gray(void) { return PNG_FORMAT_GRAY; }
NSPNG_INLINE png_uint_32 nspng_format_linear_y(void) { return PNG_FORMAT_LINEAR_Y; }
NSPNG_INLINE png_uint_32 nspng_format_rgb(void) { return PNG_FORMAT_RGB; }
NSPNG_INLINE png_uint_32 nspng_format_flag_linear(void) { return PNG_FORMAT_FLAG_LINEAR; }
NSPNG_INLINE const char *nspng_version(void) { return PNG_LIBPNG_VER_STRING; }

#endif
