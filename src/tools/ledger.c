/*
 * ledger.c — the matrix ledger: a JSONL file (default benchmarks/matrix.jsonl) that is
 * only ever appended to.  An append is one write(2) of one whole line on an O_APPEND
 * descriptor under flock(LOCK_EX), so concurrent benches never interleave; if the file
 * ends in a torn line (a writer killed mid-write), the append starts with a newline so
 * the new entry stays intact.  Readers take a shared lock, skip a torn or malformed line
 * with a warning naming the file and line, and never modify the file.
 * Not for: what an entry holds (capsule_read.c) or how it is shown (matrix.c).
 */
#include "tools/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int lock_fd(int fd, int op) {
    int rc;
    do
        rc = flock(fd, op);
    while (rc != 0 && errno == EINTR);
    return rc;
}

zmlx_status zledger_append(const char *path, const json_t *entry, zerr *e) {
    if (!json_is_object(entry))
        return zerr_set(e, ZMLX_ERR_INVALID_ARG, "%s: a ledger entry must be a JSON object", path);
    char *text = json_dumps(entry, JSON_COMPACT | JSON_ENSURE_ASCII); /* never holds '\n' */
    if (!text) return zerr_set(e, ZMLX_ERR_NOMEM, "%s: could not serialize the entry", path);
    size_t len = strlen(text);
    char *line = malloc(len + 2);
    zmlx_status st = ZMLX_OK;
    if (!line) {
        free(text);
        return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory", path);
    }
    if ((st = zfile_make_parents(path, e)) != ZMLX_OK) goto done;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = zerr_set(e, ZMLX_ERR_IO, "%s: cannot open the ledger: %s", path, strerror(errno));
        goto done;
    }
    if (lock_fd(fd, LOCK_EX) != 0) {
        st = zerr_set(e, ZMLX_ERR_IO, "%s: cannot lock the ledger: %s", path, strerror(errno));
        close(fd);
        goto done;
    }
    /* a torn last line (no '\n') gets terminated by this append, never rewritten */
    size_t o = 0;
    struct stat sb;
    char last = '\n';
    if (fstat(fd, &sb) == 0 && sb.st_size > 0 && pread(fd, &last, 1, sb.st_size - 1) == 1 &&
        last != '\n')
        line[o++] = '\n';
    memcpy(line + o, text, len);
    o += len;
    line[o++] = '\n';
    ssize_t w = write(fd, line, o);
    if (w != (ssize_t)o)
        st = zerr_set(e, ZMLX_ERR_IO, "%s: append failed (%zd of %zu bytes written): %s", path, w,
                      o, w < 0 ? strerror(errno) : "short write");
    lock_fd(fd, LOCK_UN);
    if (close(fd) != 0 && st == ZMLX_OK)
        st = zerr_set(e, ZMLX_ERR_IO, "%s: close failed: %s", path, strerror(errno));
done:
    free(line);
    free(text);
    return st;
}

/* The whole file under a shared lock into a NUL-terminated buffer. */
static zmlx_status slurp(const char *path, char **out, size_t *n, zerr *e) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return zerr_set(e, errno == ENOENT ? ZMLX_ERR_NOT_FOUND : ZMLX_ERR_IO,
                        "%s: cannot open the ledger: %s", path, strerror(errno));
    lock_fd(fd, LOCK_SH);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    zmlx_status st = ZMLX_OK;
    while (buf) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            st = zerr_set(e, ZMLX_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    lock_fd(fd, LOCK_UN);
    close(fd);
    if (!buf) return zerr_set(e, ZMLX_ERR_NOMEM, "%s: out of memory reading the ledger", path);
    if (st != ZMLX_OK) {
        free(buf);
        return st;
    }
    buf[len] = '\0';
    *out = buf;
    *n = len;
    return ZMLX_OK;
}

static void warn(zwarn_fn fn, void *user, const char *path, long line, const char *why) {
    if (!fn) return;
    char msg[768];
    snprintf(msg, sizeof msg, "%s:%ld: skipping %s", path, line, why);
    fn(user, msg);
}

zmlx_status zledger_read(const char *path, json_t **entries, zwarn_fn warn_fn, void *user,
                         zerr *e) {
    *entries = NULL;
    char *buf;
    size_t len = 0;
    zmlx_status st = slurp(path, &buf, &len, e);
    if (st != ZMLX_OK) return st;
    json_t *arr = json_array();
    long lineno = 0;
    for (size_t pos = 0; pos < len;) {
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        const char *s = buf + pos;
        size_t n = end - pos;
        lineno++;
        pos = nl ? end + 1 : len;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
            k++;
        if (k == n) continue; /* blank */
        json_error_t je;
        json_t *o = json_loadb(s, n, 0, &je);
        char why[600];
        if (!o) {
            if (!nl)
                snprintf(why, sizeof why,
                         "a torn last line (no newline: an append was cut "
                         "short): %s",
                         je.text);
            else
                snprintf(why, sizeof why, "a malformed line: %s", je.text);
            warn(warn_fn, user, path, lineno, why);
            continue;
        }
        if (!json_is_object(o) || !json_is_string(json_object_get(o, "model_id"))) {
            warn(warn_fn, user, path, lineno, "a line that is not a matrix entry (no model_id)");
            json_decref(o);
            continue;
        }
        json_array_append_new(arr, o);
    }
    free(buf);
    *entries = arr;
    return ZMLX_OK;
}
