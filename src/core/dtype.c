/* dtype.c — the dtype table and conversions that are too long to inline. */
#include "core/dtype.h"

const zdtype_traits zdtype_table[ZDT_COUNT] = {
    [ZDT_F32] = {"F32", 4, true},     [ZDT_F16] = {"F16", 2, true},
    [ZDT_BF16] = {"BF16", 2, true},   [ZDT_F64] = {"F64", 8, false},
    [ZDT_I64] = {"I64", 8, false},    [ZDT_I32] = {"I32", 4, false},
    [ZDT_I16] = {"I16", 2, false},    [ZDT_I8] = {"I8", 1, false},
    [ZDT_U64] = {"U64", 8, false},    [ZDT_U32] = {"U32", 4, false},
    [ZDT_U16] = {"U16", 2, false},    [ZDT_U8] = {"U8", 1, false},
    [ZDT_BOOL] = {"BOOL", 1, false},  [ZDT_F8_E4M3] = {"F8_E4M3", 1, false},
    [ZDT_F8_E5M2] = {"F8_E5M2", 1, false},
};

bool zdtype_from_name(const char *name, size_t len, zdtype *out) {
    for (int i = 0; i < ZDT_COUNT; i++) {
        const char *n = zdtype_table[i].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            *out = (zdtype)i;
            return true;
        }
    }
    return false;
}

float zf16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
