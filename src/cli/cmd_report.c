/*
 * cmd_report.c — `zmlx report CAPSULE...`: capsules read back (schema checked) and
 * printed as text: per capsule the settings and a table of the baseline and every
 * variant; with several capsules, a side-by-side table of the decode speedups.
 * Exit 0, or 2 when a capsule cannot be read.
 */
#include "cli/cmd_harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_MAX 64

int cmd_report(int argc, char **argv) {
    const char *paths[REPORT_MAX];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf(
                "usage: zmlx report CAPSULE...\n"
                "Prints each capsule written by `zmlx bench` (medians, change %% with \"neutral\"\n"
                "inside the baseline noise band, fidelity, memory, achieved GB/s, %% of the\n"
                "measured roofline) and, for several capsules, their speedups side by side.\n");
            return 0;
        }
        if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("report: unknown option %s (see zmlx report --help)", argv[i]);
            return EXIT_USAGE;
        }
        if (n == REPORT_MAX) {
            cli_error("report: at most %d capsules at once", REPORT_MAX);
            return EXIT_USAGE;
        }
        paths[n++] = argv[i];
    }
    if (n == 0) {
        cli_error("report: give one or more capsule files (written by zmlx bench)");
        return EXIT_USAGE;
    }
    json_t *caps[REPORT_MAX];
    int rc = 0, loaded = 0;
    for (int i = 0; i < n; i++) {
        zerr e = {{0}};
        if (zcapsule_read(paths[i], &caps[i], &e) != ZMLX_OK) {
            cli_error("%s", e.msg);
            rc = EXIT_USAGE;
            break;
        }
        loaded++;
    }
    if (rc == 0) zreport_capsules(stdout, (const json_t *const *)caps, paths, n);
    for (int i = 0; i < loaded; i++)
        json_decref(caps[i]);
    return rc;
}
