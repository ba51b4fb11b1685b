/*
 * cmd_patterns.c — `zmlx patterns [--model MODEL]`: the pattern registry as a table
 * (name, what it fuses, fidelity class and why, status, default-on families, env gate),
 * and with a model, which of them its family preset applies.
 */
#include "cli/cli.h"
#include "patch/patch.h"

#include <stdio.h>
#include <string.h>

static const char *fid_name(zfidelity f) {
    return f == ZFID_EXACT ? "exact" : f == ZFID_TOKENS ? "tokens" : "approx";
}

static const char *status_name(zpstatus s) {
    return s == ZPS_STABLE ? "stable" : s == ZPS_EXPERIMENTAL ? "experimental" : "unsafe";
}

static void fam_list(uint32_t bits, char *buf, size_t n) {
    static const zfamily fams[] = {ZFAM_GLM4_MOE_LITE, ZFAM_DEEPSEEK_V3, ZFAM_DEEPSEEK_V32, ZFAM_KIMI_K25};
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof fams / sizeof fams[0] && o < n; i++)
        if (bits & ZFAMBIT(fams[i]))
            o += (size_t)snprintf(buf + o, n - o, "%s%s", o ? "," : "", zfamily_name(fams[i]));
    if (!o) snprintf(buf, n, "-");
}

int cmd_patterns(int argc, char **argv) {
    cli_common c;
    cli_common_init(&c);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: zmlx patterns [--model MODEL]\n");
            return 0;
        }
        int r = cli_common_arg(&c, argc, argv, &i);
        if (r <= 0) {
            if (r == 0) cli_error("patterns: unknown option %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    printf("%-17s %-7s %-13s %-8s %-60s\n", "pattern", "class", "status", "decode", "fuses");
    for (int i = 0; i < ZPAT_COUNT; i++) {
        const zpattern *p = &zpattern_table[i];
        char fam[128], def[128];
        fam_list(p->families, fam, sizeof fam);
        fam_list(p->default_on, def, sizeof def);
        printf("%-17s %-7s %-13s %-8s %s\n", p->name, fid_name(p->fidelity), status_name(p->status),
               p->decode_only ? "only" : "+prefill", p->fuses);
        printf("%-17s families: %s; default on: %s; env gate: %s\n", "", fam, def,
               p->env_gate ? p->env_gate : "none");
        printf("%-17s why %s: %s\n", "", fid_name(p->fidelity), p->why);
    }
    if (c.model) {
        zmlx_model_params mp = c.mp;
        mp.patterns = "default";
        char err[ZMLX_ERR_MAX], pats[256];
        /* the preset only needs the family: probe is enough for directories and builtins */
        zmlx_model_info info;
        if (zmlx_model_probe(c.model, &mp, &info, err, sizeof err) != ZMLX_OK) {
            cli_error("%s", err);
            return EXIT_USAGE;
        }
        zfamily fam = ZFAM_GLM4_MOE_LITE;
        const zfamily fams[] = {ZFAM_GLM4_MOE_LITE, ZFAM_DEEPSEEK_V3, ZFAM_DEEPSEEK_V32, ZFAM_KIMI_K25};
        for (size_t i = 0; i < 4; i++)
            if (!strcmp(zfamily_name(fams[i]), info.model_type)) fam = fams[i];
        zpatch_format(zpatch_preset(fam), pats, sizeof pats);
        printf("\n%s (%s): preset = %s\n", c.model, info.model_type, pats);
    }
    return 0;
}
