/*
 * test_yarn.c — the rope frequencies, YaRN attention factor and softmax scale
 * (zrope_params, MODELS.md 3.3 step 3 and 5) of the DeepSeek-V3.x / Kimi-K2.5 configs,
 * from the shipped config files through the config parser, against values computed
 * in Python (float64) and pinned here:
 *
 *   def yarn(d, theta, factor, orig, bf, bs, mscale, mscale_all_dim, nope):
 *       corr = lambda r: d * math.log(orig / (r * 2 * math.pi)) / (2 * math.log(theta))
 *       low = max(math.floor(corr(bf)), 0); high = min(math.ceil(corr(bs)), d - 1)
 *       if low == high: high += 0.001
 *       gm = lambda s, m=1.0: 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
 *       inv = []
 *       for i in range(d // 2):
 *           b = 1.0 / theta ** (2 * i / d)
 *           ramp = min(max((i - low) / (high - low), 0.0), 1.0)
 *           inv.append(b * (1 - ramp) + b / factor * ramp)
 *       scale = (nope + d) ** -0.5
 *       if mscale_all_dim:
 *           scale *= gm(factor, mscale_all_dim) ** 2
 *           att = gm(factor, mscale) / gm(factor, mscale_all_dim)
 *       else:
 *           att = gm(factor, mscale)
 *       return low, high, inv, att, scale
 *
 * (transformers' _compute_yarn_parameters / DeepSeek's yarn formulas; the inv_freq
 * values agree with mlx-lm 0.32.2 rope_utils.YarnRoPE's float32 `1/_freqs` to 1.9e-7
 * relative, and its mscale exactly.)  Cases:
 *   - DeepSeek-V3.2 (deepseek-v3.2.config.json): d 64, theta 1e4, factor 40, beta 32/1
 *     -> ramp [10, 23], attention factor 1, softmax scale 192^-0.5 * 1.368888^2
 *     = 0.1352338 (MODELS.md 3.3);
 *   - Kimi-K2.5 (kimi-k2.5.config.json, text_config): theta 5e4, factor 64 -> ramp
 *     [8, 20], scale 0.1446796;
 *   - Kimi with the beta_fast 1.0 of some third-party configs and no mscale_all_dim:
 *     ramp [19, 20], attention factor mscale(64) = 1.4158883, scale unchanged;
 *   - dsv3-tiny (fixtures/models/dsv3-tiny, transformers-5 rope_parameters): d 16,
 *     factor 4 -> ramp [2, 6]; and the same with mscale 0.707 -> attention factor
 *     0.9643269;
 *   - GLM-4.7-Flash (no rope_scaling): plain theta^(-2i/64), scale 1/16, factor 1.
 * inv_freq is stored as float: each value within 1.2e-7 relative of the pinned double.
 */
#include "io/config.h"
#include "model/model.h"
#include "tcheck.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static const double DSV32_INV[32] = {
    1, 0.74989420933245587, 0.56234132519034907, 0.42169650342858228, 0.31622776601683794,
    0.23713737056616555, 0.17782794100389226, 0.1333521432163324, 0.10000000000000001,
    0.074989420933245579, 0.056234132519034905, 0.039006926567143857, 0.026879360111431223,
    0.018378146218877827, 0.01244795587027246, 0.0083345089510207769, 0.0054999999999999997,
    0.0035619974943291656, 0.002249365300761396, 0.0013705136361428923, 0.00079056941504209452,
    0.00041499039849078964, 0.00017782794100389219, 3.3338035804083099e-05,
    2.5000000000000001e-05, 1.8747355233311393e-05, 1.4058533129758727e-05,
    1.0542412585714557e-05, 7.9056941504209488e-06, 5.9284342641541385e-06,
    4.4456985250973064e-06, 3.3338035804083097e-06};

static const double KIMI_INV[32] = {
    1, 0.71311108491193209, 0.50852741942427271, 0.36263653977310817, 0.25860013630631018,
    0.18441062375976633, 0.13150525997861309, 0.093777858614974452, 0.066874030497642206,
    0.043776655951338693, 0.028427959083084944, 0.018282955605182935, 0.011619159941997385,
    0.0072741192706538092, 0.0044658487485676485, 0.0026702033909973841, 0.0015372967345311057,
    0.00083465504462425157, 0.00040864598749796991, 0.00015837499102694852,
    1.8070233867863153e-05, 1.288608407812423e-05, 9.1892093972175436e-06,
    6.5529270827327235e-06, 4.672964941316314e-06, 3.3323430990574996e-06,
    2.3763308026676832e-06, 1.6945878367999938e-06, 1.2084293707790077e-06,
    8.6174437963566137e-07, 6.1451946947874631e-07, 4.3822064557949375e-07};

static const double TINY_INV[8] = {
    1, 0.31622776601683794, 0.10000000000000001, 0.02569350598886808, 0.0062500000000000003,
    0.0013834964763236657, 0.00025000000000000001, 7.9056941504209485e-05};

static bool load(const char *rel, zmlx_config *c) {
    char path[1024];
    zerr e = {{0}};
    tc_shared(path, sizeof path, rel);
    zmlx_status st = zcfg_load(path, c, &e);
    CHECKF(st == ZMLX_OK, "%s: %s", path, e.msg);
    return st == ZMLX_OK;
}

static bool close_rel(double a, double ref, double tol) {
    return fabs(a - ref) <= tol * fabs(ref);
}

/* zrope_params(c) against the pinned values. */
static void expect(const char *what, const zmlx_config *c, const double *inv, int half,
                   double att, double scale) {
    float f[64], ms = -1.0f, sc = -1.0f;
    CHECKF(c->qk_rope_dim == 2 * half, "%s: qk_rope_head_dim %d, expected %d", what,
           c->qk_rope_dim, 2 * half);
    if (c->qk_rope_dim != 2 * half) return;
    zrope_params(c, f, &ms, &sc);
    int bad = -1;
    for (int i = 0; i < half && bad < 0; i++)
        if (!close_rel(f[i], inv[i], 1.2e-7)) bad = i;
    CHECKF(bad < 0, "%s: inv_freq[%d] = %.9g, expected %.9g", what, bad, bad < 0 ? 0.0 : (double)f[bad],
           bad < 0 ? 0.0 : inv[bad]);
    CHECKF(close_rel(ms, att, 1e-7), "%s: attention factor %.9g, expected %.9g", what, (double)ms, att);
    CHECKF(close_rel(sc, scale, 1e-7), "%s: softmax scale %.9g, expected %.9g", what, (double)sc,
           scale);
    printf("%s: %d frequencies, attention factor %.7g, softmax scale %.7g\n", what, half,
           (double)ms, (double)sc);
}

int main(void) {
    zmlx_config c;
    if (load("fixtures/configs/deepseek-v3.2.config.json", &c))
        expect("DeepSeek-V3.2", &c, DSV32_INV, 32, 1.0, 0.1352337788608801);
    if (load("fixtures/configs/kimi-k2.5.config.json", &c)) {
        expect("Kimi-K2.5", &c, KIMI_INV, 32, 1.0, 0.14467962580268923);
        /* beta_fast 1.0 and no mscale / mscale_all_dim keys: the ramp moves to [19, 20],
           so dims 9..19 keep their plain frequencies 5e4^(-2i/64) and the rest are
           Kimi-K2.5's (Python: the same values) */
        double bf1[32];
        for (int i = 0; i < 32; i++)
            bf1[i] = i >= 9 && i <= 19 ? 1.0 / pow(5e4, (double)(2 * i) / 64.0) : KIMI_INV[i];
        c.rope_beta_fast = 1.0;
        c.rope_mscale = 1.0;
        c.rope_mscale_all_dim = 0.0;
        expect("Kimi-K2.5, beta_fast 1", &c, bf1, 32, 1.4158883083359672, 0.07216878364870322);
    }
    if (load("fixtures/models/dsv3-tiny/config.json", &c)) {
        expect("dsv3-tiny", &c, TINY_INV, 8, 1.0, 0.1871303351950243);
        c.rope_mscale = 0.707;
        expect("dsv3-tiny, mscale 0.707", &c, TINY_INV, 8, 0.964326914892074, 0.1871303351950243);
    }
    if (load("fixtures/configs/glm-4.7-flash.config.json", &c)) {
        double plain[32];
        for (int i = 0; i < 32; i++) plain[i] = 1.0 / pow(1e6, (double)(2 * i) / 64.0);
        expect("GLM-4.7-Flash (no YaRN)", &c, plain, 32, 1.0, 0.0625);
    }
    return tc_done();
}
