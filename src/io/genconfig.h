/*
 * genconfig.h — a model's generation_config.json, for the one thing zmlx takes from it:
 * the end-of-sequence ids (`eos_token_id`, an integer or a list), which add to those of
 * config.json when a chat decides where a reply stops.  The sampling defaults in the file
 * (temperature, top_p, ...) are not read: the CLI's options decide those.
 */
#ifndef ZMLX_IO_GENCONFIG_H
#define ZMLX_IO_GENCONFIG_H

#include "core/err.h"
#include "io/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zgen_config {
    bool present;                  /* the file exists */
    int32_t eos_ids[ZCFG_MAX_EOS]; /* eos_token_id, in file order */
    int32_t n_eos;
} zgen_config;

/* Parse generation_config.json text; `fname` names it in messages.  A missing or null
 * eos_token_id gives no ids; anything else that is not an id or a list of ids is
 * ZMLX_ERR_FORMAT, as is malformed JSON. */
zmlx_status zgen_parse(const char *text, size_t len, const char *fname, zgen_config *out, zerr *e);
/* dir/generation_config.json: absent is fine (present = false, no ids). */
zmlx_status zgen_load(const char *dir, zgen_config *out, zerr *e);

#endif
