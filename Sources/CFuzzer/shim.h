// libFuzzer's entry for programs that keep their own main (the toolchain's
// libclang_rt.fuzzer_no_main), linked only into fuzzing builds.
#ifndef NS_CFUZZER_SHIM_H
#define NS_CFUZZER_SHIM_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv,
                        int (*callback)(const uint8_t *data, size_t size));

#endif
