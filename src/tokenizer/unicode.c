/*
 * unicode.c — the Unicode 16 general categories that PCRE2's tables may lack.
 *
 * HF tokenizers 0.23 matches its regexes with the Oniguruma in the onig crate, which
 * carries Unicode 16.0; Debian's PCRE2 10.42 carries Unicode 14.0.  Between the two,
 * 10,302 code points changed general category (all newly assigned, but U+1171E Mn->Mc):
 * CJK extensions H and I, new scripts, new digits, new emoji.  regex.c adds these ranges
 * to \p{L}, \p{N}, \p{S}, ... (and removes them where they left a category), so the
 * split is the same as HF's for any text.  With a PCRE2 whose tables are already newer,
 * the corrections change nothing.
 *
 * Table generated from Python's unicodedata (Unicode 14.0.0, checked equal to PCRE2
 * 10.42's categories for every code point) against unicodedata2 16.0.0: consecutive code
 * points with the same (new, old) category pair form one range.
 * Not here: scripts and binary properties (refused in regex.c, except White_Space which
 * has not changed since Unicode 6.3).
 */
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

typedef struct tok_uni_delta {
    uint32_t lo, hi;
    char gc_new[3], gc_old[3];
} tok_uni_delta;

static const tok_uni_delta tok_delta[] = {
    {0x00897, 0x00897, "Mn", "Cn"}, {0x00CF3, 0x00CF3, "Mc", "Cn"}, {0x00ECE, 0x00ECE, "Mn", "Cn"},
    {0x01B4E, 0x01B4F, "Po", "Cn"}, {0x01B7F, 0x01B7F, "Po", "Cn"}, {0x01C89, 0x01C89, "Lu", "Cn"},
    {0x01C8A, 0x01C8A, "Ll", "Cn"}, {0x02427, 0x02429, "So", "Cn"}, {0x02FFC, 0x02FFF, "So", "Cn"},
    {0x031E4, 0x031E5, "So", "Cn"}, {0x031EF, 0x031EF, "So", "Cn"}, {0x0A7CB, 0x0A7CC, "Lu", "Cn"},
    {0x0A7CD, 0x0A7CD, "Ll", "Cn"}, {0x0A7DA, 0x0A7DA, "Lu", "Cn"}, {0x0A7DB, 0x0A7DB, "Ll", "Cn"},
    {0x0A7DC, 0x0A7DC, "Lu", "Cn"}, {0x105C0, 0x105F3, "Lo", "Cn"}, {0x10D40, 0x10D49, "Nd", "Cn"},
    {0x10D4A, 0x10D4D, "Lo", "Cn"}, {0x10D4E, 0x10D4E, "Lm", "Cn"}, {0x10D4F, 0x10D4F, "Lo", "Cn"},
    {0x10D50, 0x10D65, "Lu", "Cn"}, {0x10D69, 0x10D6D, "Mn", "Cn"}, {0x10D6E, 0x10D6E, "Pd", "Cn"},
    {0x10D6F, 0x10D6F, "Lm", "Cn"}, {0x10D70, 0x10D85, "Ll", "Cn"}, {0x10D8E, 0x10D8F, "Sm", "Cn"},
    {0x10EC2, 0x10EC4, "Lo", "Cn"}, {0x10EFC, 0x10EFF, "Mn", "Cn"}, {0x1123F, 0x11240, "Lo", "Cn"},
    {0x11241, 0x11241, "Mn", "Cn"}, {0x11380, 0x11389, "Lo", "Cn"}, {0x1138B, 0x1138B, "Lo", "Cn"},
    {0x1138E, 0x1138E, "Lo", "Cn"}, {0x11390, 0x113B5, "Lo", "Cn"}, {0x113B7, 0x113B7, "Lo", "Cn"},
    {0x113B8, 0x113BA, "Mc", "Cn"}, {0x113BB, 0x113C0, "Mn", "Cn"}, {0x113C2, 0x113C2, "Mc", "Cn"},
    {0x113C5, 0x113C5, "Mc", "Cn"}, {0x113C7, 0x113CA, "Mc", "Cn"}, {0x113CC, 0x113CD, "Mc", "Cn"},
    {0x113CE, 0x113CE, "Mn", "Cn"}, {0x113CF, 0x113CF, "Mc", "Cn"}, {0x113D0, 0x113D0, "Mn", "Cn"},
    {0x113D1, 0x113D1, "Lo", "Cn"}, {0x113D2, 0x113D2, "Mn", "Cn"}, {0x113D3, 0x113D3, "Lo", "Cn"},
    {0x113D4, 0x113D5, "Po", "Cn"}, {0x113D7, 0x113D8, "Po", "Cn"}, {0x113E1, 0x113E2, "Mn", "Cn"},
    {0x116D0, 0x116E3, "Nd", "Cn"}, {0x1171E, 0x1171E, "Mc", "Mn"}, {0x11B00, 0x11B09, "Po", "Cn"},
    {0x11BC0, 0x11BE0, "Lo", "Cn"}, {0x11BE1, 0x11BE1, "Po", "Cn"}, {0x11BF0, 0x11BF9, "Nd", "Cn"},
    {0x11F00, 0x11F01, "Mn", "Cn"}, {0x11F02, 0x11F02, "Lo", "Cn"}, {0x11F03, 0x11F03, "Mc", "Cn"},
    {0x11F04, 0x11F10, "Lo", "Cn"}, {0x11F12, 0x11F33, "Lo", "Cn"}, {0x11F34, 0x11F35, "Mc", "Cn"},
    {0x11F36, 0x11F3A, "Mn", "Cn"}, {0x11F3E, 0x11F3F, "Mc", "Cn"}, {0x11F40, 0x11F40, "Mn", "Cn"},
    {0x11F41, 0x11F41, "Mc", "Cn"}, {0x11F42, 0x11F42, "Mn", "Cn"}, {0x11F43, 0x11F4F, "Po", "Cn"},
    {0x11F50, 0x11F59, "Nd", "Cn"}, {0x11F5A, 0x11F5A, "Mn", "Cn"}, {0x1342F, 0x1342F, "Lo", "Cn"},
    {0x13439, 0x1343F, "Cf", "Cn"}, {0x13440, 0x13440, "Mn", "Cn"}, {0x13441, 0x13446, "Lo", "Cn"},
    {0x13447, 0x13455, "Mn", "Cn"}, {0x13460, 0x143FA, "Lo", "Cn"}, {0x16100, 0x1611D, "Lo", "Cn"},
    {0x1611E, 0x16129, "Mn", "Cn"}, {0x1612A, 0x1612C, "Mc", "Cn"}, {0x1612D, 0x1612F, "Mn", "Cn"},
    {0x16130, 0x16139, "Nd", "Cn"}, {0x16D40, 0x16D42, "Lm", "Cn"}, {0x16D43, 0x16D6A, "Lo", "Cn"},
    {0x16D6B, 0x16D6C, "Lm", "Cn"}, {0x16D6D, 0x16D6F, "Po", "Cn"}, {0x16D70, 0x16D79, "Nd", "Cn"},
    {0x18CFF, 0x18CFF, "Lo", "Cn"}, {0x1B132, 0x1B132, "Lo", "Cn"}, {0x1B155, 0x1B155, "Lo", "Cn"},
    {0x1CC00, 0x1CCEF, "So", "Cn"}, {0x1CCF0, 0x1CCF9, "Nd", "Cn"}, {0x1CD00, 0x1CEB3, "So", "Cn"},
    {0x1D2C0, 0x1D2D3, "No", "Cn"}, {0x1DF25, 0x1DF2A, "Ll", "Cn"}, {0x1E030, 0x1E06D, "Lm", "Cn"},
    {0x1E08F, 0x1E08F, "Mn", "Cn"}, {0x1E4D0, 0x1E4EA, "Lo", "Cn"}, {0x1E4EB, 0x1E4EB, "Lm", "Cn"},
    {0x1E4EC, 0x1E4EF, "Mn", "Cn"}, {0x1E4F0, 0x1E4F9, "Nd", "Cn"}, {0x1E5D0, 0x1E5ED, "Lo", "Cn"},
    {0x1E5EE, 0x1E5EF, "Mn", "Cn"}, {0x1E5F0, 0x1E5F0, "Lo", "Cn"}, {0x1E5F1, 0x1E5FA, "Nd", "Cn"},
    {0x1E5FF, 0x1E5FF, "Po", "Cn"}, {0x1F6DC, 0x1F6DC, "So", "Cn"}, {0x1F774, 0x1F776, "So", "Cn"},
    {0x1F77B, 0x1F77F, "So", "Cn"}, {0x1F7D9, 0x1F7D9, "So", "Cn"}, {0x1F8B2, 0x1F8BB, "So", "Cn"},
    {0x1F8C0, 0x1F8C1, "So", "Cn"}, {0x1FA75, 0x1FA77, "So", "Cn"}, {0x1FA87, 0x1FA89, "So", "Cn"},
    {0x1FA8F, 0x1FA8F, "So", "Cn"}, {0x1FAAD, 0x1FAAF, "So", "Cn"}, {0x1FABB, 0x1FABF, "So", "Cn"},
    {0x1FAC6, 0x1FAC6, "So", "Cn"}, {0x1FACE, 0x1FACF, "So", "Cn"}, {0x1FADA, 0x1FADC, "So", "Cn"},
    {0x1FADF, 0x1FADF, "So", "Cn"}, {0x1FAE8, 0x1FAE9, "So", "Cn"}, {0x1FAF7, 0x1FAF8, "So", "Cn"},
    {0x1FBCB, 0x1FBEF, "So", "Cn"}, {0x2B739, 0x2B739, "Lo", "Cn"}, {0x2EBF0, 0x2EE5D, "Lo", "Cn"},
    {0x31350, 0x323AF, "Lo", "Cn"}};

/* Is general category `gc` (two letters) in `set`: a short name ("L", "Lu", "LC"), or
 * "W" for the categories of a word character (letters, marks, Nd, Nl, Pc)? */
static int tok_gc_in(const char *gc, const char *set) {
    if (strcmp(set, "W") == 0)
        return gc[0] == 'L' || gc[0] == 'M' || strcmp(gc, "Nd") == 0 || strcmp(gc, "Nl") == 0 ||
               strcmp(gc, "Pc") == 0;
    if (strcmp(set, "LC") == 0)
        return strcmp(gc, "Lu") == 0 || strcmp(gc, "Ll") == 0 || strcmp(gc, "Lt") == 0;
    if (set[1] == '\0') return gc[0] == set[0];
    return strcmp(gc, set) == 0;
}

size_t tok_uni_ranges(const char *set, int entering, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < sizeof tok_delta / sizeof tok_delta[0]; i++) {
        const tok_uni_delta *d = &tok_delta[i];
        int now = tok_gc_in(d->gc_new, set), before = tok_gc_in(d->gc_old, set);
        if (entering ? !(now && !before) : !(before && !now)) continue;
        char item[40];
        int k = d->lo == d->hi ? snprintf(item, sizeof item, "\\x{%X}", (unsigned)d->lo)
                               : snprintf(item, sizeof item, "\\x{%X}-\\x{%X}", (unsigned)d->lo,
                                          (unsigned)d->hi);
        if (o + (size_t)k < cap) memcpy(out + o, item, (size_t)k);
        o += (size_t)k;
    }
    if (cap) out[o < cap ? o : cap - 1] = '\0';
    return o;
}

int tok_gc_name(const char *name, size_t n, char out[3]) {
    static const char *const names[][2] = {
        {"l", "L"},
        {"letter", "L"},
        {"lc", "LC"},
        {"l&", "LC"},
        {"casedletter", "LC"},
        {"lu", "Lu"},
        {"uppercaseletter", "Lu"},
        {"ll", "Ll"},
        {"lowercaseletter", "Ll"},
        {"lt", "Lt"},
        {"titlecaseletter", "Lt"},
        {"lm", "Lm"},
        {"modifierletter", "Lm"},
        {"lo", "Lo"},
        {"otherletter", "Lo"},
        {"m", "M"},
        {"mark", "M"},
        {"combiningmark", "M"},
        {"mn", "Mn"},
        {"nonspacingmark", "Mn"},
        {"mc", "Mc"},
        {"spacingmark", "Mc"},
        {"me", "Me"},
        {"enclosingmark", "Me"},
        {"n", "N"},
        {"number", "N"},
        {"nd", "Nd"},
        {"decimalnumber", "Nd"},
        {"nl", "Nl"},
        {"letternumber", "Nl"},
        {"no", "No"},
        {"othernumber", "No"},
        {"p", "P"},
        {"punctuation", "P"},
        {"pc", "Pc"},
        {"connectorpunctuation", "Pc"},
        {"pd", "Pd"},
        {"dashpunctuation", "Pd"},
        {"ps", "Ps"},
        {"openpunctuation", "Ps"},
        {"pe", "Pe"},
        {"closepunctuation", "Pe"},
        {"pi", "Pi"},
        {"initialpunctuation", "Pi"},
        {"pf", "Pf"},
        {"finalpunctuation", "Pf"},
        {"po", "Po"},
        {"otherpunctuation", "Po"},
        {"s", "S"},
        {"symbol", "S"},
        {"sm", "Sm"},
        {"mathsymbol", "Sm"},
        {"sc", "Sc"},
        {"currencysymbol", "Sc"},
        {"sk", "Sk"},
        {"modifiersymbol", "Sk"},
        {"so", "So"},
        {"othersymbol", "So"},
        {"z", "Z"},
        {"separator", "Z"},
        {"zs", "Zs"},
        {"spaceseparator", "Zs"},
        {"zl", "Zl"},
        {"lineseparator", "Zl"},
        {"zp", "Zp"},
        {"paragraphseparator", "Zp"},
        {"c", "C"},
        {"other", "C"},
        {"cc", "Cc"},
        {"control", "Cc"},
        {"cf", "Cf"},
        {"format", "Cf"},
        {"cs", "Cs"},
        {"surrogate", "Cs"},
        {"co", "Co"},
        {"privateuse", "Co"},
        {"cn", "Cn"},
        {"unassigned", "Cn"},
    };
    char key[40]; /* Oniguruma's loose matching: case, spaces, '_' and '-' ignored */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == ' ' || name[i] == '_' || name[i] == '-') continue;
        if (k + 1 >= sizeof key) return 0;
        key[k++] = (char)tolower((unsigned char)name[i]);
    }
    key[k] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i][0], key) == 0) {
            snprintf(out, 3, "%s", names[i][1]);
            return 1;
        }
    return 0;
}

void tok_word_class(char *out, size_t cap, int kind) {
    /* A bare \w in Oniguruma takes U+0000-00FF from an ISO-8859-1 table where the
     * superscript digits and fractions are word chars ([\w] does not); Rust regex adds
     * Join_Control.  All three checked against HF tokenizers 0.23.2 for every code point. */
    const char *base =
        kind == TOK_WORD_ONIG
            ? "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}"
        : kind == TOK_WORD_ONIG_CLASS ? "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}"
                                      : "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
    size_t n = strlen(base);
    if (cap <= n) {
        if (cap) out[0] = '\0';
        return;
    }
    memcpy(out, base, n);
    tok_uni_ranges("W", 1, out + n, cap - n);
}
