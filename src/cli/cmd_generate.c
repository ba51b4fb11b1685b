/*
 * cmd_generate.c — `zmlx generate`: prefill the prompt, then sample token by token,
 * streaming text to stdout (or one JSON object with --json), optionally writing every
 * step's logits (float32 LE, one row of vocab_size per generated token) to a file
 * that appears only when complete (temp file + rename).  --chat wraps the prompt in the
 * model family's chat template (chat_loop.c), and runs an interactive chat when stdin is a
 * terminal and no prompt is given.
 */
#include "cli/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gen_opts {
    cli_common c;
    const char *prompt, *prompt_ids, *logits_out;
    long long max_tokens;
    zmlx_sampler_params sp;
    bool ignore_eos, chat, no_think;
} gen_opts;

static void gen_usage(void) {
    printf("usage: zmlx generate [MODEL] [--prompt TEXT | --prompt-ids 1,2,3] [--max-tokens N]\n"
           "       [--chat [--no-think]] [--temp T] [--top-k K] [--top-p P] [--seed S]\n"
           "       [--ignore-eos] [--logits-out FILE] [--json] [common options]\n"
           "Temperature 0 (default) is greedy.  Generation stops at an end-of-sequence token\n"
           "unless --ignore-eos.  --chat sends --prompt as a user turn in the model family's\n"
           "chat template (GLM-4.7, DeepSeek-V3.2, Kimi-K2.5) and stops at its end-of-turn\n"
           "tokens too; --no-think turns thinking off.  --chat with no prompt on a terminal\n"
           "starts an interactive chat (/exit or Ctrl-D ends it).  Default model: %s.\n",
           ZMLX_DEFAULT_MODEL);
}

static int parse(gen_opts *o, int argc, char **argv) {
    cli_common_init(&o->c);
    o->max_tokens = 128;
    o->sp = zmlx_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long n;
        double x;
        int r = cli_common_arg(&o->c, argc, argv, &i);
        if (r < 0) return EXIT_USAGE;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            gen_usage();
            return 0;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
            continue;
        } else if (!strcmp(a, "--chat") || !strcmp(a, "--no-think")) {
            *(a[2] == 'c' ? &o->chat : &o->no_think) = true;
            continue;
        }
        static const char *const valued[] = {"--prompt", "--prompt-ids", "--logits-out", "--max-tokens",
                                             "--temp", "--top-p", "--top-k", "--seed", NULL};
        if (!(v = cli_valued("generate", valued, argc, argv, &i))) return EXIT_USAGE;
        if (!strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "--prompt-ids")) o->prompt_ids = v;
        else if (!strcmp(a, "--logits-out")) o->logits_out = v;
        else if (!strcmp(a, "--max-tokens")) {
            if (!cli_int(a, v, 0, 1LL << 24, &o->max_tokens)) return EXIT_USAGE;
        } else if (!strcmp(a, "--temp")) {
            if (!cli_float(a, v, 0.0, 100.0, &x)) return EXIT_USAGE;
            o->sp.temperature = (float)x;
        } else if (!strcmp(a, "--top-p")) {
            if (!cli_float(a, v, 1e-6, 1.0, &x)) return EXIT_USAGE;
            o->sp.top_p = (float)x;
        } else if (!strcmp(a, "--top-k")) {
            if (!cli_int(a, v, 0, 1LL << 30, &n)) return EXIT_USAGE;
            o->sp.top_k = (int32_t)n;
        } else if (!strcmp(a, "--seed")) {
            if (!cli_int(a, v, 0, 0x7fffffffffffffffLL, &n)) return EXIT_USAGE;
            o->sp.seed = (uint64_t)n;
        } else {
            cli_error("generate: unknown option %s (see zmlx generate --help)", a);
            return EXIT_USAGE;
        }
    }
    if (o->prompt && o->prompt_ids) {
        cli_error("give either --prompt or --prompt-ids, not both");
        return EXIT_USAGE;
    }
    if (o->chat && o->prompt_ids) {
        cli_error("--chat wraps --prompt text in a chat template; it does not take --prompt-ids");
        return EXIT_USAGE;
    }
    if (o->no_think && !o->chat) {
        cli_error("--no-think is a chat setting: use it with --chat");
        return EXIT_USAGE;
    }
    return -1; /* continue */
}

typedef struct logits_file {
    FILE *f;
    char tmp[4096];
} logits_file;

static bool logits_open(logits_file *lf, const char *path) {
    snprintf(lf->tmp, sizeof lf->tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(lf->tmp);
    if (fd < 0 || !(lf->f = fdopen(fd, "wb"))) {
        cli_error("--logits-out %s: cannot create a file there", path);
        if (fd >= 0) close(fd);
        return false;
    }
    return true;
}

static bool logits_finish(logits_file *lf, const char *path, bool ok) {
    if (!lf->f) return ok;
    ok = (fclose(lf->f) == 0) && ok;
    lf->f = NULL;
    if (ok && rename(lf->tmp, path) == 0) return true;
    unlink(lf->tmp);
    if (ok) cli_error("--logits-out %s: could not write the file", path);
    return false;
}

static void print_json(const gen_opts *o, const zmlx_model *m, const int32_t *prompt,
                       size_t n_prompt, const int32_t *toks, size_t n_toks, const char *text,
                       double pre_tps, double dec_tps, const char *stop) {
    zmlx_model_info info;
    zmlx_model_get_info(m, &info);
    json_t *j = json_object(), *pa = json_array(), *ta = json_array();
    for (size_t i = 0; i < n_prompt; i++) json_array_append_new(pa, json_integer(prompt[i]));
    for (size_t i = 0; i < n_toks; i++) json_array_append_new(ta, json_integer(toks[i]));
    json_object_set_new(j, "model", json_string(info.name));
    json_object_set_new(j, "backend", json_string(info.backend));
    char pats[256];
    zmlx_model_patterns(m, pats, sizeof pats);
    json_object_set_new(j, "patterns", json_string(pats));
    json_object_set_new(j, "precision", json_string(o->c.mp.precision == ZMLX_PRECISION_EXACT ? "exact" : "fast"));
    json_object_set_new(j, "kv_dtype", json_string(info.kv_dtype));
    json_object_set_new(j, "threads", json_integer(info.threads));
    json_object_set_new(j, "weights", json_string(info.weight_format));
    json_object_set_new(j, "cpu_isa", json_string(info.cpu_isa));
    json_object_set_new(j, "prompt_ids", pa);
    json_object_set_new(j, "tokens", ta);
    json_object_set_new(j, "text", cli_json_text(text ? text : "", text ? strlen(text) : 0));
    json_object_set_new(j, "n_prompt", json_integer((json_int_t)n_prompt));
    json_object_set_new(j, "n_generated", json_integer((json_int_t)n_toks));
    json_object_set_new(j, "prefill_tok_s", json_real(pre_tps));
    json_object_set_new(j, "decode_tok_s", json_real(dec_tps));
    json_object_set_new(j, "bytes_per_token", json_integer(info.bytes_per_token));
    json_object_set_new(j, "peak_mem_mb", json_real(cli_peak_rss_mb()));
    json_object_set_new(j, "stop_reason", json_string(stop));
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) puts(s);
    else cli_error("could not encode the JSON result");
    free(s);
    json_decref(j);
}

/* Growing text buffer for --json. */
typedef struct textbuf {
    char *p;
    size_t n, cap;
} textbuf;

static void text_add(textbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *q = realloc(b->p, cap);
        if (!q) return;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void emit(const gen_opts *o, textbuf *tb, const char *s, size_t n) {
    if (!n) return;
    if (o->c.json) {
        text_add(tb, s, n);
    } else {
        fwrite(s, 1, n, stdout);
        fflush(stdout);
    }
}

static bool is_eos(const int32_t *eos, size_t n_eos, int32_t t) {
    for (size_t i = 0; i < n_eos; i++)
        if (eos[i] == t) return true;
    return false;
}

typedef struct gen_state {
    zmlx_model *m;
    zmlx_tokenizer *tok;
    zmlx_session *s;
    zmlx_sampler *smp;
    zmlx_detok_stream *ds;
    int32_t *prompt, *out;
    float *logits;
    textbuf text;
    logits_file lf;
} gen_state;

/* The tokens into the cache: the logits into g->logits for the sampler, or (greedy) the
   next token into *next. */
static zmlx_status gen_eval(gen_state *g, bool greedy, const int32_t *ids, size_t n, int32_t *next) {
    if (greedy) return zmlx_session_eval_greedy(g->s, ids, n, next);
    return zmlx_session_eval(g->s, ids, n, g->logits, 0);
}

static void gen_free(gen_state *g) {
    zmlx_detok_stream_free(g->ds);
    zmlx_sampler_free(g->smp);
    zmlx_session_free(g->s);
    zmlx_tokenizer_free(g->tok);
    zmlx_model_free(g->m);
    free(g->prompt);
    free(g->out);
    free(g->logits);
    free(g->text.p);
}

int cmd_generate(int argc, char **argv) {
    gen_opts o = {0};
    int r = parse(&o, argc, argv);
    if (r >= 0) return r;
    gen_state g = {0};
    int rc = EXIT_USAGE;
    char err[ZMLX_ERR_MAX];
    if (!(g.m = cli_load_model(&o.c))) return EXIT_USAGE;
    cli_chat chat = {0};
    size_t n_prompt = 0;
    bool interactive = false;
    if (o.chat) {
        const char *path = o.c.model ? o.c.model : ZMLX_DEFAULT_MODEL;
        if (!(g.tok = cli_tokenizer_at(path, "--chat needs the model's tokenizer"))) goto done;
        chat.m = g.m;
        chat.tok = g.tok;
        if (!cli_chat_setup(&chat, path, !o.no_think)) goto done;
        interactive = !o.prompt && !o.c.json && isatty(STDIN_FILENO);
        if (!interactive &&
            !(g.prompt = cli_chat_ids(&chat, o.prompt ? o.prompt : ZMLX_DEFAULT_PROMPT, &n_prompt)))
            goto done;
    } else {
        g.tok = cli_load_tokenizer(&o.c, g.m, o.prompt != NULL);
        if (!(g.prompt = cli_prompt_ids(o.prompt, o.prompt_ids, g.tok, g.m, &n_prompt))) goto done;
    }
    const int32_t vocab = zmlx_model_vocab_size(g.m);
    zmlx_session_params sp = zmlx_session_default_params();
    if (zmlx_session_init(g.m, &sp, &g.s, err, sizeof err) != ZMLX_OK) {
        cli_error("%s", err);
        goto done;
    }
    if (zmlx_sampler_init(&o.sp, vocab, &g.smp) != ZMLX_OK) {
        cli_error("invalid sampling settings");
        goto done;
    }
    if (g.tok && zmlx_detok_stream_init(g.tok, &g.ds) != ZMLX_OK) goto done;
    g.out = malloc(((size_t)o.max_tokens + 1) * sizeof *g.out);
    g.logits = malloc((size_t)vocab * sizeof *g.logits);
    if (!g.out || !g.logits) {
        cli_error("out of memory");
        goto done;
    }
    if (interactive) {
        chat.s = g.s;
        chat.smp = g.smp;
        chat.max_tokens = o.max_tokens;
        chat.logits = g.logits;
        chat.greedy = zmlx_sampler_params_greedy(&o.sp);
        if (o.ignore_eos) chat.n_stop = 0;
        rc = cli_chat_loop(&chat);
        goto done;
    }
    if (o.logits_out && !logits_open(&g.lf, o.logits_out)) goto done;
    int32_t model_eos[16];
    const int32_t *eos = model_eos;
    size_t n_eos = zmlx_model_eos_ids(g.m, model_eos, 16);
    n_eos = n_eos < 16 ? n_eos : 16;
    if (o.chat) { /* config.json + generation_config.json + the template's end tokens */
        eos = chat.stop;
        n_eos = chat.n_stop;
    }

    /* greedy without a logits file: the session returns the token (on a GPU, its argmax
       taken there: one id copied back instead of the logits) */
    const bool greedy = zmlx_sampler_params_greedy(&o.sp) && !g.lf.f;
    int32_t next = 0;
    double t0 = cli_now();
    rc = 1;
    if (gen_eval(&g, greedy, g.prompt, n_prompt, &next) != ZMLX_OK) {
        cli_error("%s", zmlx_session_error(g.s));
        goto done;
    }
    double t_prefill = cli_now() - t0, t1 = cli_now();
    size_t n_out = 0;
    const char *stop = "max_tokens";
    bool io_ok = true;
    while ((long long)n_out < o.max_tokens) {
        int32_t t = greedy ? next : zmlx_sampler_sample(g.smp, g.logits);
        g.out[n_out++] = t;
        if (g.lf.f) io_ok = fwrite(g.logits, sizeof(float), (size_t)vocab, g.lf.f) == (size_t)vocab && io_ok;
        if (g.ds) {
            const char *s;
            size_t n;
            if (zmlx_detok_stream_push(g.ds, t, &s, &n) == ZMLX_OK) emit(&o, &g.text, s, n);
        }
        if (!o.ignore_eos && is_eos(eos, n_eos, t)) {
            stop = "eos";
            break;
        }
        if ((long long)n_out == o.max_tokens) break;
        if (gen_eval(&g, greedy, &t, 1, &next) != ZMLX_OK) {
            cli_error("%s", zmlx_session_error(g.s));
            logits_finish(&g.lf, o.logits_out, false);
            goto done;
        }
    }
    double t_decode = cli_now() - t1;
    if (g.ds) {
        const char *s;
        size_t n;
        if (zmlx_detok_stream_flush(g.ds, &s, &n) == ZMLX_OK) emit(&o, &g.text, s, n);
    }
    if (!logits_finish(&g.lf, o.logits_out, io_ok)) goto done;
    double pre_tps = t_prefill > 0 ? (double)n_prompt / t_prefill : 0;
    /* the first token comes from the prefill logits: decode timing covers the rest */
    double dec_tps = n_out > 1 && t_decode > 0 ? (double)(n_out - 1) / t_decode : 0;
    if (o.c.json) {
        print_json(&o, g.m, g.prompt, n_prompt, g.out, n_out, g.text.p, pre_tps, dec_tps, stop);
    } else {
        if (g.ds) putchar('\n');
        else {
            for (size_t i = 0; i < n_out; i++) printf("%s%d", i ? "," : "", g.out[i]);
            putchar('\n');
        }
        fprintf(stderr,
                "prefill: %zu tokens, %.2f tok/s | decode: %zu tokens, %.2f tok/s | peak %.0f MiB"
                " | stop: %s\n",
                n_prompt, pre_tps, n_out, dec_tps, cli_peak_rss_mb(), stop);
    }
    rc = 0;
done:
    gen_free(&g);
    return rc;
}
