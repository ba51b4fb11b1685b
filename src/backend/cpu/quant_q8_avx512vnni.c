/* quant_q8_avx512vnni.c — the fast mode's quantized product on AVX-512 with VNNI (vpdpbusd): the template
 * quant_q8_x86.h compiled with this level's flags (CMakeLists.txt). */
#define Q8_NAME zk_qrows_q8_avx512vnni
#define Q8_VNNI 1
#include "backend/cpu/quant_q8_x86.h"
