/*
 * pyjson.h — JSON text exactly as CPython's json.dump(obj, f, indent=N) writes it, so
 * that the config.json and model.safetensors.index.json of `zmlx convert` are the
 * same bytes mlx-lm writes: ensure_ascii escapes (\uXXXX, lowercase hex, surrogate
 * pairs), "," + newline + indent between items and ": " after keys, empty containers
 * as [] / {}, integers as decimal, floats as Python's repr (shortest round-trip
 * digits; exponent form "1e-05" below 1e-4 and from 1e16 on, else positional with at
 * least one decimal, "1000000.0").  Object keys keep their order (jansson keeps
 * insertion order); mlx-lm sorts only the top level of config.json, so sorting is
 * asked for per call.  For writing, not parsing (jansson parses).
 */
#ifndef ZMLX_IO_PYJSON_H
#define ZMLX_IO_PYJSON_H

#include <jansson.h>
#include <stdbool.h>

/* The text of v (no trailing newline: json.dump writes none), malloc'd; NULL when out of
   memory or v holds a non-finite real.  indent > 0: pretty as above; indent == 0: ", "
   and ": " separators on one line (json.dumps default). */
char *zpyjson_dumps(const json_t *v, int indent, bool sort_top_keys);

/* Python's repr of a finite double into buf (at least 32 bytes). */
void zpyjson_float_repr(double x, char *buf, size_t n);

#endif
