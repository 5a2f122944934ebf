// libtiff's field getters are variadic and its error handler takes a
// va_list, neither of which Swift can call or implement: typed getters,
// and a handler that keeps the last message for the Swift wrapper to report.
#ifndef NS_CTIFF_SHIM_H
#define NS_CTIFF_SHIM_H
#include <stdarg.h>
#include <stdio.h>
#include <tiffio.h>

#define NSTIFF_INLINE static inline __attribute__((always_inline))

static inline char *nstiff_message(void) {
    static _Thread_local char message[512];
    return message;
}

static inline void nstiff_record(const char *module, const char *format, va_list arguments) {
    char *m = nstiff_message();
    int n = snprintf(m, 512, "%s: ", module ? module : "libtiff");
    if (n < 0 || n >= 512) n = 0;
    vsnprintf(m + n, (size_t)(512 - n), format, arguments);
}

/// Errors are kept (nstiff_message) instead of printed; warnings dropped.
NSTIFF_INLINE void nstiff_keep_errors(void) {
    nstiff_message()[0] = 0;
    TIFFSetErrorHandler(nstiff_record);
    TIFFSetWarningHandler(NULL);
}

NSTIFF_INLINE int nstiff_u32(TIFF *t, uint32_t tag, uint32_t *value) { return TIFFGetField(t, tag, value); }
NSTIFF_INLINE int nstiff_u16_defaulted(TIFF *t, uint32_t tag, uint16_t *value) { return TIFFGetFieldDefaulted(t, tag, value); }

#endif
