/*
 * tools.h — library pieces shared by the experiment tools (validate, bench, matrix):
 * one greedy run of a model under a pattern set, with its timings.
 */
#ifndef ZMLX_TOOLS_TOOLS_H
#define ZMLX_TOOLS_TOOLS_H

#include "core/err.h"
#include "patch/patch.h"
#include "zmlx.h"

/*
 * Apply `set` to every layer of m, then one fresh session: prefill `prompt`, then
 * max_tokens greedy tokens (EOS ignored) into toks[max_tokens], as generate decodes
 * them (zmlx_session_eval_greedy: on a GPU the argmax is taken there).  *peak_bytes is
 * raised to the session's peak.
 */
zmlx_status ztool_greedy_run(zmlx_model *m, zpatch_set set, const int32_t *prompt,
                             size_t n_prompt, int32_t max_tokens, int32_t *toks,
                             zmlx_run_times *t, int64_t *peak_bytes, zerr *e);
/* Set the model's pattern set (every layer's plan) without parsing. */
void ztool_set_patterns(zmlx_model *m, zpatch_set set);
zpatch_set ztool_get_patterns(const zmlx_model *m);
/* Median of the decode (or prefill) rates of n runs. */
double ztool_median(const zmlx_run_times *t, int n, bool decode);

#endif
