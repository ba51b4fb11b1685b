/* text_json.c — text as a JSON string for the CLI's JSON output: invalid UTF-8 bytes become
 * U+FFFD, as Hugging Face's decode shows them (jansson only takes valid UTF-8). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if the bytes are not one. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    size_t len = p[0] < 0x80             ? 1
                 : (p[0] & 0xe0) == 0xc0 ? 2
                 : (p[0] & 0xf0) == 0xe0 ? 3
                 : (p[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (!len || len > n || (len == 2 && p[0] < 0xc2)) return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (len == 3) {
        unsigned cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
        if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    }
    if (len == 4) {
        unsigned cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) | ((p[2] & 0x3fu) << 6);
        if (cp < 0x10000 || cp > 0x10ffff) return 0;
    }
    return len;
}

json_t *cli_json_text(const char *text, size_t n) {
    size_t o = 0;
    char *buf = malloc(n * 3 + 1);
    if (!buf) return json_string("");
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)text + i, n - i);
        if (k) {
            memcpy(buf + o, text + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j ? j : json_string("");
}
