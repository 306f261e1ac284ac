// Nothing to compile: CFuzzerDriver only declares libFuzzer's LLVMFuzzerRunDriver.
#include "CFuzzerDriver.h"
