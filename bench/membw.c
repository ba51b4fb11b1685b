/*
 * membw.c — `zmlx-membw [--threads N] [--seconds S] [--mib M] [--json]`: prints this
 * machine's measured memory read bandwidth (zmlx_measure_read_bandwidth), the ceiling
 * benchmarks compare achieved GB/s against.  A benchmark tool, not a test.
 */
#include "zmlx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int threads = 0, json = 0;
    double seconds = 3.0;
    size_t mib = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = (size_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: zmlx-membw [--threads N] [--seconds S] [--mib M] [--json]\n");
            return 2;
        }
    }
    double bw = zmlx_measure_read_bandwidth(threads, mib << 20, seconds);
    if (bw <= 0) {
        fprintf(stderr, "zmlx-membw: could not allocate %zu MiB\n", mib);
        return 1;
    }
    if (json) printf("{\"read_GBps\":%.2f,\"threads\":%d,\"mib\":%zu}\n", bw * 1e-9, threads, mib);
    else printf("read bandwidth: %.2f GB/s (%d threads, %zu MiB buffer)\n", bw * 1e-9, threads, mib);
    return 0;
}
