/*
 * chat_loop.c — `zmlx generate --chat`: the model family's chat template around the
 * prompt, the ids that end a reply, and the interactive loop that runs when stdin is a
 * terminal and no prompt was given.
 *
 * The loop keeps one session for the whole conversation: each turn appends only the new
 * turn's tokens (the user message, rendered as a continuation of what the cache already
 * holds) and generates until a stop id or --max-tokens.  Reply tokens go into the cache as
 * they are generated; a stop id does not — the next continuation closes the reply as the
 * template writes it (Kimi <|im_end|>, DeepSeek <｜end▁of▁sentence｜>; GLM's next
 * <|user|> is itself the close).  /exit or end of input ends the chat.
 * Builtin models have the byte-level tokenizer: the template's special tokens are then
 * plain bytes and a reply ends only at --max-tokens (their random weights make noise
 * anyway); the pipeline is the same.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

bool cli_chat_setup(cli_chat *c, const char *path, bool thinking) {
    zmlx_model_info info;
    zmlx_model_get_info(c->m, &info);
    zmlx_chat_template tmpl;
    if (zmlx_chat_template_for(info.model_type, &tmpl) != ZMLX_OK) {
        cli_error("--chat: no chat template for model_type \"%s\" (supported: glm4_moe_lite, "
                  "deepseek_v32, kimi_k25); write the prompt out and use --prompt instead",
                  info.model_type);
        return false;
    }
    c->cp = zmlx_chat_default_params(tmpl);
    c->cp.thinking = thinking;
    char err[ZMLX_ERR_MAX];
    const size_t cap = sizeof c->stop / sizeof c->stop[0];
    zmlx_status st =
        zmlx_chat_stop_ids(tmpl, c->m, path, c->tok, c->stop, cap, &c->n_stop, err, sizeof err);
    if (st != ZMLX_OK && st != ZMLX_ERR_LIMIT) {
        cli_error("%s", err);
        return false;
    }
    if (c->n_stop > cap) c->n_stop = cap;
    return true;
}

int32_t *cli_chat_ids(const cli_chat *c, const char *user_text, size_t *n) {
    zmlx_chat_message msg = {ZMLX_CHAT_USER, user_text, NULL};
    size_t len = 0;
    zmlx_chat_format(&c->cp, &msg, 1, NULL, 0, &len);
    char *text = malloc(len + 1);
    size_t cap = zmlx_tokenizer_encode_bound(len);
    int32_t *ids = malloc((cap ? cap : 1) * sizeof *ids);
    zmlx_status st =
        text && ids ? zmlx_chat_format(&c->cp, &msg, 1, text, len + 1, &len) : ZMLX_ERR_NOMEM;
    if (!st) st = zmlx_tokenizer_encode(c->tok, text, len, 1, ids, cap, n);
    free(text);
    int32_t vocab = zmlx_model_vocab_size(c->m);
    for (size_t i = 0; !st && i < *n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) {
            cli_error("the tokenizer produced id %d, outside the model's vocabulary of %d", ids[i],
                      vocab);
            free(ids);
            return NULL;
        }
    if (st) {
        cli_error("could not format the chat turn: %s", zmlx_status_str(st));
        free(ids);
        return NULL;
    }
    return ids;
}

static bool is_stop(const cli_chat *c, int32_t t) {
    for (size_t i = 0; i < c->n_stop; i++)
        if (c->stop[i] == t) return true;
    return false;
}

/* The tokens into the cache: the logits for the sampler, or (greedy) the next token. */
static zmlx_status eval(cli_chat *c, const int32_t *ids, size_t n) {
    if (c->greedy) return zmlx_session_eval_greedy(c->s, ids, n, &c->next);
    return zmlx_session_eval(c->s, ids, n, c->logits, 0);
}

/* One reply, streamed to stdout; every token but a stop id goes into the cache. */
static bool chat_reply(cli_chat *c, zmlx_detok_stream *ds, size_t *gen, const char **stop) {
    const char *s;
    size_t n;
    *gen = 0;
    *stop = "max_tokens";
    while ((long long)*gen < c->max_tokens) {
        int32_t t = c->greedy ? c->next : zmlx_sampler_sample(c->smp, c->logits);
        if (is_stop(c, t)) {
            *stop = "eos";
            break;
        }
        ++*gen;
        if (zmlx_detok_stream_push(ds, t, &s, &n) == ZMLX_OK) fwrite(s, 1, n, stdout);
        fflush(stdout);
        if (eval(c, &t, 1) != ZMLX_OK) {
            cli_error("%s", zmlx_session_error(c->s));
            return false;
        }
    }
    if (zmlx_detok_stream_flush(ds, &s, &n) == ZMLX_OK) fwrite(s, 1, n, stdout);
    putchar('\n');
    fflush(stdout);
    return true;
}

/* One user turn: its tokens into the cache, then the reply. */
static bool chat_turn(cli_chat *c, zmlx_detok_stream *ds, const char *line, int turn) {
    c->cp.continuation = turn > 0;
    size_t n = 0, gen;
    const char *stop;
    int32_t *ids = cli_chat_ids(c, line, &n);
    if (!ids) return false;
    zmlx_status st = eval(c, ids, n);
    free(ids);
    if (st != ZMLX_OK) {
        cli_error("%s%s", zmlx_session_error(c->s),
                  st == ZMLX_ERR_LIMIT ? " (the context is full: start a new chat)" : "");
        return false;
    }
    if (!chat_reply(c, ds, &gen, &stop)) return false;
    fprintf(stderr, "[turn %d: +%zu prompt tokens, %zu generated, context %lld, stop: %s]\n",
            turn + 1, n, gen, (long long)zmlx_session_n_past(c->s), stop);
    return true;
}

int cli_chat_loop(cli_chat *c) {
    zmlx_detok_stream *ds = NULL;
    if (zmlx_detok_stream_init(c->tok, &ds) != ZMLX_OK) {
        cli_error("out of memory");
        return 1;
    }
    fprintf(stderr, "zmlx chat (%s template, thinking %s): type a message; /exit or Ctrl-D ends\n",
            zmlx_chat_template_name(c->cp.tmpl), c->cp.thinking ? "on" : "off");
    char *line = NULL;
    size_t cap = 0;
    int turn = 0, rc = 0;
    for (;;) {
        fputs("> ", stderr);
        fflush(stderr);
        ssize_t len = getline(&line, &cap, stdin);
        if (len < 0) {
            fputc('\n', stderr);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!strcmp(line, "/exit")) break;
        if (!len) continue;
        if (!chat_turn(c, ds, line, turn++)) {
            rc = 1;
            break;
        }
    }
    free(line);
    zmlx_detok_stream_free(ds);
    return rc;
}
