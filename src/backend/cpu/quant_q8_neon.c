/* quant_q8_neon.c — the fast mode's quantized product on Advanced SIMD (vmull_s8 +
 * vpadalq_s16): the template quant_q8_neon.h. */
#define Q8_NAME zk_qrows_q8_neon
#define Q8_DOTPROD 0
#include "backend/cpu/quant_q8_neon.h"
