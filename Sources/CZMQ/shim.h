// libzmq imports cleanly except for errno values it may define itself
// (EFSM, ETERM) on some platforms; expose the ones the wrapper maps.
#ifndef NS_CZMQ_SHIM_H
#define NS_CZMQ_SHIM_H
#include <errno.h>
#include <zmq.h>

#define NSZMQ_INLINE static inline __attribute__((always_inline))

NSZMQ_INLINE int nszmq_eagain(void) { return EAGAIN; }
NSZMQ_INLINE int nszmq_eintr(void) { return EINTR; }
NSZMQ_INLINE int nszmq_eterm(void) { return ETERM; }

#endif
