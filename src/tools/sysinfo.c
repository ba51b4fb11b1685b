/*
 * sysinfo.c — what a capsule records about the machine and the build: the UTC date, the
 * zmlx version, the git commit (zmlx_git.h, generated at build time: "abc1234", with
 * "+dirty" when tracked files differ from it) and compiler (compile definitions set by
 * CMake at configure time: ZMLX_COMPILER, ZMLX_BUILD_TYPE, ZMLX_CFLAGS), the CPU
 * model, cores and memory from /proc, the cpu backend's kernel level (ZMLX_CPU_ISA or the
 * best this CPU runs, backend/cpu/kernels.h).  GPU fields are null for host backends; a
 * device backend's run fills them (zbench_prepare).  Not for: measuring anything (membw.c
 * does that).
 */
#include "tools/harness.h"
#include "zmlx_git.h" /* ZMLX_GIT_COMMIT */

#include "backend/cpu/kernels.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef ZMLX_GIT_COMMIT
#define ZMLX_GIT_COMMIT "unknown"
#endif
#ifndef ZMLX_COMPILER
#define ZMLX_COMPILER "unknown"
#endif
#ifndef ZMLX_BUILD_TYPE
#define ZMLX_BUILD_TYPE "unknown"
#endif
#ifndef ZMLX_CFLAGS
#define ZMLX_CFLAGS "unknown"
#endif

/* The value of the first "key<spaces>: value" line of a /proc file, trimmed. */
static bool proc_field(const char *file, const char *key, char *out, size_t n) {
    FILE *f = fopen(file, "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    size_t klen = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen)) continue;
        char *p = line + klen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':') continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, "\n");
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        snprintf(out, n, "%.*s", (int)len, p);
        found = true;
    }
    fclose(f);
    return found;
}

void zsysinfo_get(zsysinfo *s) {
    memset(s, 0, sizeof *s);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(s->date, sizeof s->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    strftime(s->stamp, sizeof s->stamp, "%Y%m%dT%H%M%SZ", &tm);
    snprintf(s->version, sizeof s->version, "%s", ZMLX_VERSION);
    snprintf(s->commit, sizeof s->commit, "%s", ZMLX_GIT_COMMIT[0] ? ZMLX_GIT_COMMIT : "unknown");
    snprintf(s->compiler, sizeof s->compiler, "%s", ZMLX_COMPILER);
    snprintf(s->build_type, sizeof s->build_type, "%s", ZMLX_BUILD_TYPE);
    snprintf(s->cflags, sizeof s->cflags, "%s", ZMLX_CFLAGS);
    if (!proc_field("/proc/cpuinfo", "model name", s->cpu_model, sizeof s->cpu_model) &&
        !proc_field("/proc/cpuinfo", "Model", s->cpu_model, sizeof s->cpu_model))
        snprintf(s->cpu_model, sizeof s->cpu_model, "unknown");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->cpu_cores = cores > 0 ? (int)cores : 1;
    char mem[64];
    long long kb = 0;
    s->mem_total_bytes = -1;
    if (proc_field("/proc/meminfo", "MemTotal", mem, sizeof mem) && sscanf(mem, "%lld", &kb) == 1)
        s->mem_total_bytes = (int64_t)kb * 1024;
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(s->os, sizeof s->os, "%.40s %.60s %.20s", u.sysname, u.release, u.machine);
    else
        snprintf(s->os, sizeof s->os, "unknown");
    if (s->mem_total_bytes > 0)
        snprintf(s->hardware, sizeof s->hardware, "%.160s, %d cores, %.1f GiB", s->cpu_model,
                 s->cpu_cores, (double)s->mem_total_bytes / 1073741824.0);
    else
        snprintf(s->hardware, sizeof s->hardware, "%.160s, %d cores", s->cpu_model, s->cpu_cores);
    zk_isa_describe(s->cpu_isa, sizeof s->cpu_isa);
}

json_t *zsysinfo_device_json(const zsysinfo *s) {
    json_t *gpu = s->gpu_name[0]
                      ? json_pack("{s:s, s:I, s:s, s:i}", "name", s->gpu_name, "memory_bytes",
                                  (json_int_t)s->gpu_memory_bytes, "driver", s->gpu_driver, "count",
                                  s->gpu_count)
                      : json_pack("{s:n, s:n, s:n, s:n}", "name", "memory_bytes", "driver", "count");
    json_t *d = json_pack("{s:s, s:i, s:o, s:s, s:s, s:s, s:o}", "cpu_model", s->cpu_model,
                          "cpu_cores", s->cpu_cores, "mem_total_bytes",
                          s->mem_total_bytes >= 0 ? json_integer(s->mem_total_bytes) : json_null(),
                          "os", s->os, "hardware", s->hardware, "cpu_isa", s->cpu_isa, "gpu", gpu);
    return d;
}
