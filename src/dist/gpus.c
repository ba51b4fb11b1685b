/*
 * gpus.c — `--gpus` lists and the checks of a run's ranks: which distributions are
 * coherent (one process driving a list of local GPUs, or one process per GPU in a world
 * of processes), whether the ordinals exist on this machine, and the NCCL unique id as
 * text (how a launcher hands it to its processes through the environment).
 */
#include "dist/dist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ORDINAL 1023

/* One ordinal of a list item; false (message in e) if it is not one. */
static bool ordinal(const char *s, size_t len, const char *list, long *out, zerr *e) {
    char buf[16];
    if (len == 0 || len >= sizeof buf) {
        zerr_set(e, ZMLX_ERR_INVALID_ARG,
                 "--gpus %s: expected device ordinals such as 0,1,2,3 or 0-3", list);
        return false;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno || *end || buf[0] < '0' || buf[0] > '9' || v > MAX_ORDINAL) {
        zerr_set(e, ZMLX_ERR_INVALID_ARG,
                 "--gpus %s: \"%s\" is not a device ordinal (0 to %d)", list, buf, MAX_ORDINAL);
        return false;
    }
    *out = v;
    return true;
}

zmlx_status zmlx_dist_parse_gpus(const char *list, zmlx_dist_params *d, char *err,
                                 size_t err_size) {
    zerr e = {{0}};
    zmlx_status st = ZMLX_OK;
    int32_t ids[ZMLX_MAX_GPUS];
    int32_t n = 0;
    bool seen[MAX_ORDINAL + 1] = {false};
    const char *p = list ? list : "";
    if (!*p) st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "--gpus: empty list (give e.g. 0,1)");
    while (st == ZMLX_OK && *p) {
        size_t len = strcspn(p, ",");
        const char *dash = memchr(p, '-', len);
        long lo, hi;
        if (!ordinal(p, dash ? (size_t)(dash - p) : len, list, &lo, &e) ||
            !ordinal(dash ? dash + 1 : p, dash ? len - (size_t)(dash - p) - 1 : len, list, &hi, &e)) {
            st = ZMLX_ERR_INVALID_ARG;
            break;
        }
        if (hi < lo) {
            st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "--gpus %s: range %ld-%ld runs backwards",
                          list, lo, hi);
            break;
        }
        for (long g = lo; g <= hi && st == ZMLX_OK; g++) {
            if (seen[g])
                st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "--gpus %s: GPU %ld is listed twice",
                              list, g);
            else if (n == ZMLX_MAX_GPUS)
                st = zerr_set(&e, ZMLX_ERR_INVALID_ARG,
                              "--gpus %s: more than %d GPUs for one process (start one process "
                              "per GPU with mpirun for more)", list, ZMLX_MAX_GPUS);
            else
                seen[g] = true, ids[n++] = (int32_t)g;
        }
        p += len;
        if (*p == ',' && !*++p)
            st = zerr_set(&e, ZMLX_ERR_INVALID_ARG, "--gpus %s: trailing comma", list);
    }
    if (st != ZMLX_OK) {
        zerr_copy(&e, err, err_size);
        return st;
    }
    d->n_gpus = n;
    memcpy(d->gpus, ids, (size_t)n * sizeof ids[0]);
    return ZMLX_OK;
}

void zdist_gpus_str(const zmlx_dist_params *d, char *buf, size_t n) {
    size_t o = 0;
    if (n) buf[0] = '\0';
    for (int32_t i = 0; i < d->n_gpus && o < n; i++) {
        int w = snprintf(buf + o, n - o, "%s%d", i ? "," : "", d->gpus[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
}

zmlx_status zdist_check_params(const zmlx_dist_params *d, int32_t *n_ranks, zerr *e) {
    if (d->n_gpus < 0 || d->n_gpus > ZMLX_MAX_GPUS)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%d GPUs for one process: expected 0 to %d",
                        d->n_gpus, ZMLX_MAX_GPUS);
    for (int32_t i = 0; i < d->n_gpus; i++) {
        if (d->gpus[i] < 0 || d->gpus[i] > MAX_ORDINAL)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "GPU ordinal %d: expected 0 to %d",
                            d->gpus[i], MAX_ORDINAL);
        for (int32_t j = 0; j < i; j++)
            if (d->gpus[j] == d->gpus[i])
                return zerr_set(e, ZMLX_ERR_INVALID_ARG, "GPU %d is listed twice", d->gpus[i]);
    }
    if (d->world == 0) {
        if (d->rank != 0)
            return zerr_set(e, ZMLX_ERR_INVALID_ARG, "rank %d without a world size", d->rank);
        *n_ranks = d->n_gpus > 1 ? d->n_gpus : 1;
        return ZMLX_OK;
    }
    if (d->world < 1 || d->world > ZDIST_MAX_RANKS)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "world of %d processes: expected 1 to %d",
                        d->world, ZDIST_MAX_RANKS);
    if (d->rank < 0 || d->rank >= d->world)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "rank %d of a world of %d: expected 0 to %d",
                        d->rank, d->world, d->world - 1);
    if (d->n_gpus != 1)
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "rank %d of %d drives %d GPUs: with one process per GPU each process "
                        "drives exactly one", d->rank, d->world, d->n_gpus);
    *n_ranks = d->world;
    return ZMLX_OK;
}

zmlx_status zdist_check_devices(const zmlx_dist_params *d, int32_t device_count, zerr *e) {
    for (int32_t i = 0; i < d->n_gpus; i++)
        if (d->gpus[i] >= device_count) {
            char list[4 * ZMLX_MAX_GPUS + 8];
            zdist_gpus_str(d, list, sizeof list);
            if (device_count <= 0)
                return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                                "--gpus %s: GPU %d does not exist: this machine has no CUDA "
                                "device", list, d->gpus[i]);
            return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                            "--gpus %s: GPU %d does not exist: this machine has %d CUDA "
                            "device%s (%s%d)", list, d->gpus[i], device_count,
                            device_count == 1 ? "" : "s", device_count == 1 ? "" : "0-",
                            device_count - 1);
        }
    return ZMLX_OK;
}

void zdist_id_to_hex(const uint8_t id[ZMLX_DIST_ID_BYTES], char hex[2 * ZMLX_DIST_ID_BYTES + 1]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < ZMLX_DIST_ID_BYTES; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[2 * ZMLX_DIST_ID_BYTES] = '\0';
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool zdist_id_from_hex(const char *hex, uint8_t id[ZMLX_DIST_ID_BYTES]) {
    if (!hex || strlen(hex) != 2 * ZMLX_DIST_ID_BYTES) return false;
    for (int i = 0; i < ZMLX_DIST_ID_BYTES; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        id[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

zmlx_status zdist_check_run(const zmlx_model_params *p, zerr *e) {
    int32_t n_ranks;
    zmlx_status st = zdist_check_params(&p->dist, &n_ranks, e);
    if (st != ZMLX_OK) return st;
    if ((p->dist.n_gpus > 0 || p->dist.world > 0) && p->backend != ZMLX_BACKEND_CUDA) {
        char list[4 * ZMLX_MAX_GPUS + 8];
        zdist_gpus_str(&p->dist, list, sizeof list);
        return zerr_set(e, ZMLX_ERR_INVALID_ARG,
                        "--gpus %s: GPUs are for --backend cuda (this run uses %s); add "
                        "--backend cuda", list,
                        p->backend == ZMLX_BACKEND_CPU_REF ? "cpu-ref" : "cpu");
    }
    return ZMLX_OK;
}
