/* quant_q8_avx2.c — the fast mode's quantized product on AVX2 (+ FMA, F16C): the template
 * quant_q8_x86.h compiled with this level's flags (CMakeLists.txt). */
#define Q8_NAME zk_qrows_q8_avx2
#define Q8_VNNI 0
#include "backend/cpu/quant_q8_x86.h"
