// libFuzzer's driver entry (compiler-rt, FuzzerInterface.h). SwiftPM links each
// executable with main pointing at the target's own entry, so a fuzz target starts
// libFuzzer itself through this function instead of linking libFuzzer's main.
// Only the fuzzer build (-sanitize=fuzzer) defines it; only FUZZING code calls it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
