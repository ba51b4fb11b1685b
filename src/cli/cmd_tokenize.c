/*
 * cmd_tokenize.c — `zmlx tokenize` and `zmlx detokenize`: tokenizer access with JSON
 * output, for tests and users.
 *
 *   zmlx tokenize PATH --text T [--no-special]     -> {"ids":[...],"n":N}
 *   zmlx tokenize PATH --jsonl FILE [--no-special] -> one JSON array of ids per input line
 *                                                     (each line one JSON string; - = stdin)
 *   zmlx detokenize PATH --ids 1,2,3               -> {"text":"..."}
 *
 * PATH is a model directory (tokenizer.json, or Kimi's tiktoken.model), a tokenizer.json
 * file, or builtin:NAME (the byte-level fallback); default builtin:glm47-mini.  Special
 * tokens written in the text are parsed unless --no-special.  Errors: one line, exit 2.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tok_opts {
    const char *path, *text, *jsonl, *ids;
    bool no_special;
} tok_opts;

zmlx_tokenizer *cli_tokenizer_at(const char *path, const char *what) {
    char err[ZMLX_ERR_MAX];
    zmlx_tokenizer *t = NULL;
    if (!strncmp(path, "builtin:", 8)) {
        zmlx_model_params mp = zmlx_model_default_params();
        zmlx_model_info info;
        if (zmlx_model_probe(path, &mp, &info, err, sizeof err) != ZMLX_OK) {
            cli_error("%s: %s", what, err);
            return NULL;
        }
        if (zmlx_tokenizer_load_bytes(&t, info.vocab_size) != ZMLX_OK)
            cli_error("%s: %s has no byte-level tokenizer (vocab_size %d)", what, path,
                      info.vocab_size);
        return t;
    }
    if (zmlx_tokenizer_load(path, &t, err, sizeof err) != ZMLX_OK) {
        cli_error("%s: %s", what, err);
        return NULL;
    }
    return t;
}

static void usage(void) {
    printf("usage: zmlx tokenize [PATH] (--text TEXT | --jsonl FILE) [--no-special]\n"
           "       zmlx detokenize [PATH] --ids 1,2,3\n"
           "PATH: a model directory, a tokenizer.json file or builtin:NAME (default %s).\n"
           "tokenize prints {\"ids\":[...],\"n\":N}; with --jsonl, FILE (- for stdin) holds one\n"
           "JSON string per line and each gives one JSON array of ids.  detokenize prints\n"
           "{\"text\":\"...\"}.  Special tokens in the text are parsed unless --no-special.\n",
           ZMLX_DEFAULT_MODEL);
}

/* 0 to go on, else the exit code. */
static int parse(tok_opts *o, const char *cmd, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = !strcmp(a, "--text")    ? &o->text
                           : !strcmp(a, "--jsonl") ? &o->jsonl
                           : !strcmp(a, "--ids")   ? &o->ids
                           : !strcmp(a, "--model") ? &o->path
                                                   : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return -1;
        } else if (!strcmp(a, "--no-special")) {
            o->no_special = true;
        } else if (dst) {
            if (!(*dst = cli_value(argc, argv, &i))) return EXIT_USAGE;
        } else if (a[0] != '-' && !o->path) {
            o->path = a;
        } else {
            cli_error("%s: unknown option %s (see zmlx %s --help)", cmd, a, cmd);
            return EXIT_USAGE;
        }
    }
    if (!o->path) o->path = ZMLX_DEFAULT_MODEL;
    return 0;
}

/* Print j as one compact line; frees it. */
static int print_line(json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!s) {
        cli_error("out of memory");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

/* text -> a JSON array of ids; NULL after printing an error. */
static json_t *encode(const zmlx_tokenizer *t, const char *text, size_t len, bool special) {
    size_t cap = zmlx_tokenizer_encode_bound(len), n = 0;
    int32_t *ids = malloc((cap ? cap : 1) * sizeof *ids);
    zmlx_status st =
        ids ? zmlx_tokenizer_encode(t, text, len, special, ids, cap, &n) : ZMLX_ERR_NOMEM;
    json_t *arr = st == ZMLX_OK ? json_array() : NULL;
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    if (st) cli_error("could not tokenize the text: %s", zmlx_status_str(st));
    free(ids);
    return arr;
}

static int tokenize_jsonl(const zmlx_tokenizer *t, const char *file, bool special) {
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) {
        cli_error("--jsonl %s: cannot open: %s", file, strerror(errno));
        return EXIT_USAGE;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        json_error_t jerr;
        json_t *s = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!json_is_string(s)) {
            cli_error("--jsonl %s: line %zu: expected one JSON string%s%s", file, lineno,
                      s ? "" : ": ", s ? "" : jerr.text);
            rc = EXIT_USAGE;
        } else {
            json_t *arr = encode(t, json_string_value(s), json_string_length(s), special);
            rc = arr ? print_line(arr) : 1;
        }
        json_decref(s);
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    tok_opts o = {0};
    int r = parse(&o, "tokenize", argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!o.text == !o.jsonl || o.ids) {
        cli_error("tokenize: give exactly one of --text TEXT or --jsonl FILE (see zmlx tokenize "
                  "--help)");
        return EXIT_USAGE;
    }
    zmlx_tokenizer *t = cli_tokenizer_at(o.path, "tokenize");
    if (!t) return EXIT_USAGE;
    int rc;
    if (o.jsonl) {
        rc = tokenize_jsonl(t, o.jsonl, !o.no_special);
    } else {
        json_t *arr = encode(t, o.text, strlen(o.text), !o.no_special);
        json_int_t n = arr ? (json_int_t)json_array_size(arr) : 0;
        rc = arr ? print_line(json_pack("{s:o, s:I}", "ids", arr, "n", n)) : 1;
    }
    zmlx_tokenizer_free(t);
    return rc;
}

/* "1,2,3" -> ids below vocab; "" is no ids; NULL after printing an error. */
static int32_t *parse_ids(const char *s, int32_t vocab, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    *n = 0;
    for (const char *p = s; ids && *s;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || (*end && *end != ',') || v < 0 || v >= vocab) {
            cli_error("--ids \"%.80s\": item %zu is not a token id in [0, %d)", s, *n + 1,
                      (int)vocab);
            free(ids);
            return NULL;
        }
        ids[(*n)++] = (int32_t)v;
        if (!*end) break;
        p = end + 1;
    }
    return ids;
}

int cmd_detokenize(int argc, char **argv) {
    tok_opts o = {0};
    int r = parse(&o, "detokenize", argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!o.ids || o.text || o.jsonl) {
        cli_error("detokenize: give --ids 1,2,3 (see zmlx detokenize --help)");
        return EXIT_USAGE;
    }
    zmlx_tokenizer *t = cli_tokenizer_at(o.path, "detokenize");
    if (!t) return EXIT_USAGE;
    size_t n = 0, len = 0;
    int32_t *ids = parse_ids(o.ids, zmlx_tokenizer_vocab_size(t), &n);
    int rc = EXIT_USAGE;
    if (ids) {
        zmlx_tokenizer_decode(t, ids, n, NULL, 0, &len);
        char *text = malloc(len + 1);
        if (text && zmlx_tokenizer_decode(t, ids, n, text, len + 1, &len) == ZMLX_OK)
            rc = print_line(json_pack("{s:o}", "text", cli_json_text(text, len)));
        else
            cli_error("out of memory");
        free(text);
    }
    free(ids);
    zmlx_tokenizer_free(t);
    return rc;
}
