/* quant_q8_neondot.c — the fast mode's quantized product with the dot product extension
 * (sdot): the template quant_q8_neon.h, compiled with +dotprod (CMakeLists.txt,
 * tests/cross_aarch64.sh) and called only when the CPU reports it. */
#define Q8_NAME zk_qrows_q8_neondot
#define Q8_DOTPROD 1
#include "backend/cpu/quant_q8_neon.h"
