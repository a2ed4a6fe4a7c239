/* cuda_bf16.h (tests/emu) - nothing: the backend handles BF16 as uint16_t bits itself. */
#include "cuda_runtime.h"
