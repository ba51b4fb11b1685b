/*
 * mma.cuh — the tensor-core building blocks of the kernels that use mma.sync directly
 * (kernels_attn_tc.cu, kernels_gemm_q4.cu): the m16n8k16 bf16 product with float32
 * accumulation and the ldmatrix loads of its operands from shared memory.
 *
 * Operand layouts (PTX ISA, mma.m16n8k16 .bf16): lane l holds A rows l / 4 and l / 4 + 8,
 * columns 2 (l % 4) + {0, 1} and + 8; B columns (n) l / 4, rows (k) 2 (l % 4) + {0, 1}
 * and + 8; the accumulator rows l / 4 and l / 4 + 8, columns 2 (l % 4) + {0, 1}.
 */
#ifndef ZMLX_BACKEND_CUDA_MMA_CUH
#define ZMLX_BACKEND_CUDA_MMA_CUH

#include <stdint.h>

__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Four 8 x 8 b16 matrices from shared memory (s: a shared-space address, bytes), lanes
   8j .. 8j + 7 naming the rows of matrix j; r_j is the mma operand register of matrix j
   (TRANS: transposed). */
template <bool TRANS>
__device__ __forceinline__ void ldsm_x4(uint32_t s, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
    if constexpr (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(s));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                     : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(s));
}
__device__ __forceinline__ void ldsm_x2(uint32_t s, uint32_t &r0, uint32_t &r1) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r0), "=r"(r1) : "r"(s));
}

/* Where lane asks ldsm_x4 for the A operand (16 x 16, row-major, row stride ld) at row
   0, column 0 of the tile: matrices (rows 0-7, k 0-7), (8-15, 0-7), (0-7, 8-15), (8-15, 8-15). */
__device__ __forceinline__ int a_lane(int lane, int ld) {
    return ((lane & 7) + ((lane >> 3) & 1) * 8) * ld + (lane >> 4) * 8;
}

#endif
