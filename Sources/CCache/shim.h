// The compiler's cache prefetch builtin, which Swift cannot call directly.
#ifndef NS_CCACHE_SHIM_H
#define NS_CCACHE_SHIM_H

// Asks for the cache line holding p ahead of a read-modify-write.
static inline __attribute__((always_inline)) void nscache_prefetch_for_write(const void *p) {
    __builtin_prefetch(p, 1, 3);
}

#endif
