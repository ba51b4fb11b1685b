/* quant_q8_avx512.c — the fast mode's quantized product on AVX-512 F/BW/DQ/VL: the template
 * quant_q8_x86.h compiled with this level's flags (CMakeLists.txt). */
#define Q8_NAME zk_qrows_q8_avx512
#define Q8_VNNI 0
#include "backend/cpu/quant_q8_x86.h"
