/* common.c — option parsing and helpers shared by the zmlx subcommands (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* One write per message: several processes (ranks under mpirun) share stderr, and an
   unbuffered stream writes each piece on its own, so pieces of two ranks' lines mixed. */
void cli_error(const char *fmt, ...) {
    static const char pre[] = "zmlx: error: ";
    const size_t np = sizeof pre - 1;
    char stack[1024], *line = stack;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(stack + np, sizeof stack - np - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof stack - np - 1) { /* a long message: its own buffer */
        char *big = malloc(np + (size_t)n + 2);
        if (big && vsnprintf(big + np, (size_t)n + 1, fmt, ap2) >= 0) {
            line = big;
        } else { /* no memory: the message as far as the stack buffer holds it */
            free(big);
            n = (int)(sizeof stack - np - 2);
        }
    }
    va_end(ap2);
    memcpy(line, pre, np);
    line[np + (size_t)n] = '\n';
    fwrite(line, 1, np + (size_t)n + 1, stderr);
    if (line != stack) free(line);
}

void cli_common_init(cli_common *c) {
    c->model = NULL;
    c->mp = zmlx_model_default_params();
    c->json = false;
}

const char *cli_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

const char *cli_valued(const char *cmd, const char *const *valued, int argc, char **argv, int *i) {
    for (int k = 0; valued[k]; k++)
        if (!strcmp(argv[*i], valued[k])) return cli_value(argc, argv, i);
    cli_error("%s: unknown option %s (see zmlx %.*s --help)", cmd, argv[*i],
              (int)strcspn(cmd, " "), cmd);
    return NULL;
}

bool cli_int(const char *opt, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_error("%s %s: expected an integer in [%lld, %lld]", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        cli_error("%s %s: expected a number in [%g, %g]", opt, s, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

int cli_common_arg(cli_common *c, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    long long n;
    if (!strcmp(a, "--json")) {
        c->json = true;
    } else if (!strcmp(a, "--backend")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "cpu")) c->mp.backend = ZMLX_BACKEND_CPU;
        else if (!strcmp(v, "cpu-ref")) c->mp.backend = ZMLX_BACKEND_CPU_REF;
        else if (!strcmp(v, "cuda")) c->mp.backend = ZMLX_BACKEND_CUDA;
        else {
            cli_error("--backend %s: expected cpu, cpu-ref or cuda", v);
            return -1;
        }
    } else if (!strcmp(a, "--precision")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "exact")) c->mp.precision = ZMLX_PRECISION_EXACT;
        else if (!strcmp(v, "fast")) c->mp.precision = ZMLX_PRECISION_FAST;
        else {
            cli_error("--precision %s: expected exact or fast", v);
            return -1;
        }
    } else if (!strcmp(a, "--kv-dtype")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (!strcmp(v, "f32")) c->mp.kv_dtype = ZMLX_KV_F32;
        else if (!strcmp(v, "bf16")) c->mp.kv_dtype = ZMLX_KV_BF16;
        else {
            cli_error("--kv-dtype %s: expected f32 or bf16", v);
            return -1;
        }
    } else if (!strcmp(a, "--threads")) {
        if (!(v = cli_value(argc, argv, i)) || !cli_int(a, v, 0, 1024, &n)) return -1;
        c->mp.threads = (int)n;
    } else if (!strcmp(a, "--gpus")) {
        char err[ZMLX_ERR_MAX];
        if (!(v = cli_value(argc, argv, i))) return -1;
        if (zmlx_dist_parse_gpus(v, &c->mp.dist, err, sizeof err) != ZMLX_OK) {
            cli_error("%s", err);
            return -1;
        }
    } else if (!strcmp(a, "--patterns")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        c->mp.patterns = v;
    } else if (!strcmp(a, "--model")) {
        if (!(v = cli_value(argc, argv, i))) return -1;
        c->model = v;
    } else if (a[0] != '-' && !c->model) {
        c->model = a;
    } else {
        return 0;
    }
    return 1;
}

zmlx_model *cli_load_model(const cli_common *c) {
    char err[ZMLX_ERR_MAX];
    zmlx_model *m = NULL;
    const char *path = c->model ? c->model : ZMLX_DEFAULT_MODEL;
    zmlx_model_params mp = c->mp;
    if (!cli_dist_env(&mp.dist)) return NULL; /* one process of several (a launcher's) */
    zmlx_status st = zmlx_model_load(path, &mp, &m, err, sizeof err);
    if (st != ZMLX_OK) {
        cli_error("%s", err);
        return NULL;
    }
    return m;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cli_peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}
