/*
 * cli.h — shared pieces of the `zmlx` command line: the common options every
 * subcommand takes, number parsing with clear errors, and the subcommand entry points.
 * The CLI is a thin client of include/zmlx.h; it prints and chooses exit codes,
 * the library never does.
 */
#ifndef ZMLX_CLI_CLI_H
#define ZMLX_CLI_CLI_H

#include "zmlx.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define ZMLX_DEFAULT_MODEL "builtin:glm47-mini"
#define ZMLX_DEFAULT_PROMPT "The capital of France is"

/* Exit codes: 0 ok, 1 failure verdict (validate FAIL), 2 usage or load errors. */
enum { EXIT_USAGE = 2 };

typedef struct cli_common {
    const char *model;
    zmlx_model_params mp;
    bool json;
} cli_common;

/* Try to consume argv[*i] (and its value) as a common option.  Returns 1 if used,
   0 if not a common option, -1 after printing an error. */
int cli_common_arg(cli_common *c, int argc, char **argv, int *i);
void cli_common_init(cli_common *c);
/* The value of option argv[*i]; prints an error and returns NULL if missing. */
const char *cli_value(int argc, char **argv, int *i);
/* The value of option argv[*i] when it is one of `valued` (NULL-terminated), consuming
   it; NULL after printing an error when argv[*i] is not one of them ("CMD: unknown
   option ...", CMD = `cmd`) or has no value. */
const char *cli_valued(const char *cmd, const char *const *valued, int argc, char **argv, int *i);
bool cli_int(const char *opt, const char *s, long long lo, long long hi, long long *out);
bool cli_float(const char *opt, const char *s, double lo, double hi, double *out);
/* Print "zmlx: error: ..." to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Load the model of c, printing the error on failure. */
zmlx_model *cli_load_model(const cli_common *c);
double cli_now(void);
/* The model's tokenizer: tokenizer.json of a model directory, or the byte-level
   fallback of builtin models; NULL if none (an error is printed when `needed`). */
zmlx_tokenizer *cli_load_tokenizer(const cli_common *c, const zmlx_model *m, bool needed);
/* Prompt ids from --prompt-ids, else --prompt through the tokenizer, else the default
   prompt text; NULL after printing an error. */
int32_t *cli_prompt_ids(const char *text, const char *ids, const zmlx_tokenizer *tok,
                        const zmlx_model *m, size_t *n);
/* Peak resident memory of this process, MiB. */
double cli_peak_rss_mb(void);

/* Text as a JSON string; invalid UTF-8 bytes become U+FFFD. */
json_t *cli_json_text(const char *text, size_t n);
/* The tokenizer at `path`: a model directory, a tokenizer.json, or builtin:NAME (its
   byte-level fallback); NULL after printing "<what>: <why>". */
zmlx_tokenizer *cli_tokenizer_at(const char *path, const char *what);

/* A chat with a model (chat_loop.c): the template, the stop ids and what generates. */
typedef struct cli_chat {
    zmlx_model *m;
    zmlx_tokenizer *tok;
    zmlx_session *s;
    zmlx_sampler *smp;
    zmlx_chat_params cp;
    int32_t stop[32];
    size_t n_stop;
    long long max_tokens;
    float *logits; /* [vocab_size] */
    bool greedy;   /* sample by zmlx_session_eval_greedy (on a GPU: the argmax there) */
    int32_t next;  /* greedy: the token the last evaluation chose */
} cli_chat;

/* Template and stop ids for c->m (model path or builtin spec `path`); false after an error. */
bool cli_chat_setup(cli_chat *c, const char *path, bool thinking);
/* One user turn rendered and encoded (ids checked against the model's vocabulary); NULL
   after printing an error. */
int32_t *cli_chat_ids(const cli_chat *c, const char *user_text, size_t *n);
/* The interactive loop on a terminal: read a line, answer it, keep the KV cache. */
int cli_chat_loop(cli_chat *c);

/* One process of a multi-process run: ZMLX_DIST_WORLD, ZMLX_DIST_RANK, ZMLX_DIST_GPU and
   ZMLX_DIST_ID (set by zmlx-mpi or another launcher) into d; nothing when
   ZMLX_DIST_WORLD is unset.  False after printing an error (cmd_dist.c). */
bool cli_dist_env(zmlx_dist_params *d);

/* The whole command line: `zmlx COMMAND ...` (main.c); returns the exit code. */
int cli_main(int argc, char **argv);

int cmd_generate(int argc, char **argv);
int cmd_dist(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_patterns(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_convert(int argc, char **argv);

#endif
