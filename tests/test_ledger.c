/*
 * test_ledger.c — the matrix ledger's rules: two processes appending 200 entries each at
 * the same time leave exactly 400 whole lines; a malformed middle line and a torn last
 * line are skipped with a warning naming the file and line while every other entry is
 * read; reading never rewrites the file (same inode, same bytes) and a later append
 * keeps the prefix intact; "latest per model x pattern set" takes the last entry.
 */
#include "tcheck.h"
#include "tools/harness.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PER_PROC 200

typedef struct warns {
    int n;
    char last[4][768];
} warns;

static void on_warn(void *user, const char *msg) {
    warns *w = user;
    if (w->n < 4) snprintf(w->last[w->n], sizeof w->last[0], "%s", msg);
    w->n++;
}

static void appender(const char *path, int proc) {
    char pad[1500];
    memset(pad, 'a' + proc, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < PER_PROC; i++) {
        json_t *e = json_pack("{s:s, s:i, s:i, s:s}", "model_id", proc ? "proc-b" : "proc-a", "seq",
                              i, "proc", proc, "payload", pad);
        zerr err;
        if (zledger_append(path, e, &err) != ZMLX_OK) _exit(1);
        json_decref(e);
    }
    _exit(0);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static void raw_append(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    if (fd >= 0) close(fd);
}

static void concurrent(const char *path) {
    pid_t pids[2];
    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        if (pids[p] == 0) appender(path, p);
    }
    for (int p = 0; p < 2; p++) {
        int status = 0;
        CHECK(waitpid(pids[p], &status, 0) == pids[p] && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0);
    }
    size_t n = 0;
    char *raw = read_all(path, &n);
    size_t lines = 0;
    for (size_t i = 0; raw && i < n; i++)
        lines += raw[i] == '\n';
    CHECKF(lines == 2 * PER_PROC, "%zu lines", lines);
    free(raw);
    json_t *entries = NULL;
    warns w = {0};
    zerr e;
    CHECK(zledger_read(path, &entries, on_warn, &w, &e) == ZMLX_OK);
    CHECKF(json_array_size(entries) == 2 * PER_PROC && w.n == 0, "%zu entries, %d warnings",
           json_array_size(entries), w.n);
    int next[2] = {0, 0};
    bool ordered = true;
    size_t i;
    const json_t *x;
    json_array_foreach(entries, i, x) {
        int p = (int)zj_num(x, "proc", -1), seq = (int)zj_num(x, "seq", -1);
        if (p < 0 || p > 1 || seq != next[p]++) ordered = false;
    }
    CHECK(ordered && next[0] == PER_PROC && next[1] == PER_PROC);
    json_decref(entries);
}

static void damaged(const char *path) {
    raw_append(path, "{this is not json\n"); /* line 401: malformed */
    json_t *ok = json_pack("{s:s, s:s}", "model_id", "after", "pattern_set", "x");
    zerr e;
    CHECK(zledger_append(path, ok, &e) == ZMLX_OK);      /* line 402 */
    raw_append(path, "{\"model_id\":\"torn\",\"seq\":"); /* line 403: torn, no newline */
    struct stat before, after;
    CHECK(stat(path, &before) == 0);
    size_t n0 = 0, n1 = 0;
    char *bytes0 = read_all(path, &n0);

    json_t *entries = NULL;
    warns w = {0};
    CHECK(zledger_read(path, &entries, on_warn, &w, &e) == ZMLX_OK);
    CHECKF(json_array_size(entries) == 2 * PER_PROC + 1 && w.n == 2, "%zu entries, %d warnings",
           json_array_size(entries), w.n);
    char want[600];
    snprintf(want, sizeof want, "%s:401: skipping a malformed line", path);
    CHECKF(strstr(w.last[0], want), "warning 1: %s", w.last[0]);
    snprintf(want, sizeof want, "%s:403: skipping a torn last line", path);
    CHECKF(strstr(w.last[1], want), "warning 2: %s", w.last[1]);
    CHECK(!strcmp(zj_str(json_array_get(entries, 2 * PER_PROC), "model_id", ""), "after"));
    json_decref(entries);

    /* reading never rewrote anything */
    CHECK(stat(path, &after) == 0 && after.st_ino == before.st_ino &&
          after.st_size == before.st_size);
    char *bytes1 = read_all(path, &n1);
    CHECK(bytes0 && bytes1 && n0 == n1 && !memcmp(bytes0, bytes1, n0));
    free(bytes1);

    /* an append after the torn line terminates it and keeps every earlier byte */
    json_t *later = json_pack("{s:s, s:s}", "model_id", "after", "pattern_set", "x");
    json_object_set_new(later, "seq", json_integer(2));
    CHECK(zledger_append(path, later, &e) == ZMLX_OK);
    CHECK(stat(path, &after) == 0 && after.st_ino == before.st_ino &&
          after.st_size > before.st_size);
    bytes1 = read_all(path, &n1);
    CHECK(bytes1 && n1 > n0 && !memcmp(bytes0, bytes1, n0) && bytes1[n0] == '\n');
    w.n = 0;
    CHECK(zledger_read(path, &entries, on_warn, &w, &e) == ZMLX_OK);
    CHECKF(json_array_size(entries) == 2 * PER_PROC + 2 && w.n == 2, "%zu entries, %d warnings",
           json_array_size(entries), w.n);
    /* latest per model x pattern set: the later "after" entry wins */
    json_t *latest = zmatrix_latest(entries);
    CHECKF(json_array_size(latest) == 3, "%zu latest", json_array_size(latest));
    size_t i;
    const json_t *x;
    json_array_foreach(latest, i, x) {
        if (!strcmp(zj_str(x, "model_id", ""), "after")) CHECK(zj_num(x, "seq", 0) == 2);
    }
    json_decref(latest);
    json_decref(entries);
    json_decref(ok);
    json_decref(later);
    free(bytes0);
    free(bytes1);
}

static void other_errors(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/missing.jsonl", dir);
    json_t *entries = NULL;
    zerr e;
    CHECK(zledger_read(path, &entries, NULL, NULL, &e) == ZMLX_ERR_NOT_FOUND && !entries);
    snprintf(path, sizeof path, "%s/odd.jsonl", dir);
    FILE *f = fopen(path, "w");
    fputs("[1,2]\n\n{\"no_model\":1}\n{\"model_id\":\"m\"}\n", f);
    fclose(f);
    warns w = {0};
    CHECK(zledger_read(path, &entries, on_warn, &w, &e) == ZMLX_OK);
    CHECKF(json_array_size(entries) == 1 && w.n == 2 && strstr(w.last[1], ":3:"), "%zu %d %s",
           json_array_size(entries), w.n, w.last[1]);
    json_decref(entries);
    json_t *arr = json_array();
    CHECK(zledger_append(path, arr, &e) == ZMLX_ERR_INVALID_ARG);
    json_decref(arr);
    unlink(path);
}

int main(void) {
    char dir[] = "/tmp/zmlx_ledgerXXXXXX", path[512];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/deep/er/matrix.jsonl", dir);
    concurrent(path);
    damaged(path);
    other_errors(dir);
    unlink(path);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/deep/er", dir);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/deep", dir);
    rmdir(sub);
    rmdir(dir);
    return tc_done();
}
