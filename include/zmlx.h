/*
 * zmlx.h — the one public C API of zmlx, an inference engine for DeepSeek-style
 * mixture-of-experts LLMs (GLM-4.7-Flash first).
 *
 * What it is for: loading a model (a checkpoint directory or a `builtin:` synthetic
 * model), running it token by token in a session with its own KV cache, sampling,
 * and describing a model's cost.  What it is not for: printing, argument parsing or
 * exiting — the `zmlx` CLI is a thin client of this header.
 *
 * Conventions: opaque handles, `zmlx_noun_verb` names, init/free pairs, every
 * fallible call returns a zmlx_status; calls that can fail for a reason a user must
 * read also fill a caller-provided message buffer (one line naming the file, field
 * and value at fault).  No global state: two models in one process are independent.
 */
#ifndef ZMLX_H
#define ZMLX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZMLX_VERSION "0.1.0"
#define ZMLX_ERR_MAX 512 /* size a message buffer needs to hold any message */

typedef enum zmlx_status {
    ZMLX_OK = 0,
    ZMLX_ERR_INVALID_ARG,  /* a caller passed a bad value (option, id, size) */
    ZMLX_ERR_IO,           /* a file could not be opened, read, mapped or written */
    ZMLX_ERR_FORMAT,       /* a file's contents are malformed */
    ZMLX_ERR_UNSUPPORTED,  /* well-formed but not supported (yet) */
    ZMLX_ERR_NOT_FOUND,    /* a required tensor, key or file is missing */
    ZMLX_ERR_NOMEM,        /* memory could not be allocated */
    ZMLX_ERR_LIMIT,        /* a declared limit was reached (context length, ...) */
    ZMLX_ERR_BACKEND,      /* the selected backend is unavailable or failed */
} zmlx_status;

/* A short constant description of a status code ("format error", ...). */
const char *zmlx_status_str(zmlx_status status);

/* ---------------------------------------------------------------- models */

typedef struct zmlx_model zmlx_model;
typedef struct zmlx_session zmlx_session;

typedef enum zmlx_backend_kind {
    ZMLX_BACKEND_CPU = 0,  /* threaded SIMD kernels */
    ZMLX_BACKEND_CPU_REF,  /* the scalar reference kernels, one thread */
    ZMLX_BACKEND_CUDA,     /* NVIDIA GPUs (when built with CUDA) */
} zmlx_backend_kind;

typedef enum zmlx_precision {
    ZMLX_PRECISION_EXACT = 0, /* float32 activations and accumulation (the reference) */
    ZMLX_PRECISION_FAST,      /* reduced-precision activations where a backend has them */
} zmlx_precision;

typedef enum zmlx_kv_dtype {
    ZMLX_KV_DEFAULT = 0, /* f32 with exact precision, bf16 with fast */
    ZMLX_KV_F32,
    ZMLX_KV_BF16,
} zmlx_kv_dtype;

#define ZMLX_MAX_GPUS 64        /* GPUs one process drives */
#define ZMLX_DIST_ID_BYTES 128  /* an NCCL unique id */

/*
 * Several GPUs (cuda backend): expert parallelism.  Each GPU holds a contiguous slice of
 * every MoE layer's routed experts and a copy of everything else (embeddings, attention,
 * routers, shared experts, dense layers, lm_head); one NCCL all-reduce per MoE layer
 * combines the experts' outputs, bit-identical to one GPU (docs/dist.md).
 * All zero (the default) = one GPU, the current device.
 *   One process, several local GPUs:   n_gpus > 1 device ordinals, world 0.
 *   One process per GPU (mpirun, ...): world = processes, rank = this one's (0-based),
 *                                      n_gpus 1 (its device), id = the bytes rank 0 got
 *                                      from zmlx_dist_unique_id, the same in every process.
 */
typedef struct zmlx_dist_params {
    int32_t n_gpus;
    int32_t gpus[ZMLX_MAX_GPUS];
    int32_t rank, world;
    uint8_t id[ZMLX_DIST_ID_BYTES];
} zmlx_dist_params;

typedef struct zmlx_model_params {
    zmlx_backend_kind backend;
    zmlx_precision precision;
    zmlx_kv_dtype kv_dtype;
    int threads;          /* 0 = all online cores */
    const char *patterns; /* "default", "none" or a comma list; NULL = "default" */
    zmlx_dist_params dist; /* GPUs (cuda backend); zero = one */
} zmlx_model_params;

zmlx_model_params zmlx_model_default_params(void);

/*
 * Load a model.  `path` is a directory holding config.json and *.safetensors
 * (optionally model.safetensors.index.json), or `builtin:NAME[:key=value,...]`.
 * On failure *out is NULL and `err` (if not NULL) holds one line naming the cause.
 */
zmlx_status zmlx_model_load(const char *path, const zmlx_model_params *params,
                            zmlx_model **out, char *err, size_t err_size);
void zmlx_model_free(zmlx_model *model);

/* What `zmlx info` reports; every count is exact for the loaded configuration. */
typedef struct zmlx_model_info {
    char name[128];         /* path or builtin spec */
    char model_type[32];    /* glm4_moe_lite, ... */
    char weight_format[32]; /* bf16, f32, mixed, ... */
    char kv_dtype[8];       /* f32 or bf16: the latent cache's element type */
    int32_t vocab_size, hidden_size, n_layers, n_heads;
    int32_t n_dense_layers, n_routed_experts, n_shared_experts, experts_per_tok;
    int32_t q_lora_rank, kv_lora_rank, qk_nope_dim, qk_rope_dim, v_head_dim;
    int32_t intermediate_size, moe_intermediate_size;
    int64_t max_position_embeddings;
    int64_t params_total;          /* every weight the model holds (no MTP) */
    int64_t params_active;         /* weights read for one decoded token */
    int64_t weight_bytes_total;    /* bytes of all weights as stored */
    int64_t bytes_per_token;       /* weight bytes read per decoded token (batch 1) */
    int64_t kv_bytes_per_position; /* latent cache bytes per context position */
    int64_t mem_ctx;               /* context length the memory estimate assumes */
    int64_t mem_needed_bytes;      /* weights + KV cache at mem_ctx + scratch */
    int64_t mem_available_bytes;   /* MemAvailable of this machine (-1 unknown) */
    int32_t fits;                  /* 1 if mem_needed_bytes fits what is available */
    const char *backend;           /* name of the backend in use */
    int32_t threads;
    char cpu_isa[320];             /* cpu backend: its kernel level, "avx2 (auto; cpu: ...)";
                                      cpu-ref: "scalar (reference)"; else "" */
} zmlx_model_info;

void zmlx_model_get_info(const zmlx_model *model, zmlx_model_info *info);
/* Switch the applied pattern set ("default", "none", "a,b,c") of a loaded model; sessions
 * created afterwards (and running ones, from their next eval) use it. */
zmlx_status zmlx_model_set_patterns(zmlx_model *model, const char *patterns, char *err,
                                    size_t err_size);
/* The applied set as "a,b,c" (or "none"); returns its length, writes at most size bytes. */
size_t zmlx_model_patterns(const zmlx_model *model, char *buf, size_t size);
/* Describe a model without loading its weights (config, tensor headers). */
zmlx_status zmlx_model_probe(const char *path, const zmlx_model_params *params,
                             zmlx_model_info *info, char *err, size_t err_size);
int32_t zmlx_model_vocab_size(const zmlx_model *model);
int64_t zmlx_model_max_positions(const zmlx_model *model);
/* The model's end-of-sequence ids; returns how many (at most `cap` written). */
size_t zmlx_model_eos_ids(const zmlx_model *model, int32_t *ids, size_t cap);

/*
 * A `--gpus` list ("0,1,2,3" or ranges "0-3", at most ZMLX_MAX_GPUS distinct ordinals
 * < 1024) into dist->gpus / n_gpus (other fields untouched).  ZMLX_ERR_INVALID_ARG with a
 * message naming the bad item.
 */
zmlx_status zmlx_dist_parse_gpus(const char *list, zmlx_dist_params *dist, char *err,
                                 size_t err_size);
/* Is CUDA device `gpu` present and usable?  ZMLX_ERR_BACKEND "CUDA unavailable: ..." without
 * a driver, a device or a CUDA build; ZMLX_ERR_INVALID_ARG when the ordinal is past the
 * machine's devices (the message gives their count). */
zmlx_status zmlx_dist_check_gpu(int32_t gpu, char *err, size_t err_size);
/* A fresh NCCL unique id for a multi-process run.  The process that makes it hosts NCCL's
 * bootstrap root, so it must be rank 0 and live until every rank has loaded the model
 * (zmlx-mpi: rank 0 makes it, MPI broadcasts it).  When NCCL_COMM_ID=host:port is set,
 * every process gets the same id from it and rank 0's model load hosts the root instead.
 * Needs a CUDA build and libnccl.so.2 at run time; ZMLX_ERR_BACKEND otherwise. */
zmlx_status zmlx_dist_unique_id(uint8_t id[ZMLX_DIST_ID_BYTES], char *err, size_t err_size);

/* ---------------------------------------------------------------- sessions */

typedef enum zmlx_attn_path {
    ZMLX_ATTN_AUTO = 0,  /* absorbed for single-token steps, expanded for prefill */
    ZMLX_ATTN_ABSORBED,  /* always the absorbed (latent) path */
    ZMLX_ATTN_EXPANDED,  /* always the expanded (per-head k/v) path */
} zmlx_attn_path;

typedef struct zmlx_session_params {
    int64_t max_positions; /* cache capacity limit; 0 = the model's max_position_embeddings */
    zmlx_attn_path attn_path;
} zmlx_session_params;

zmlx_session_params zmlx_session_default_params(void);

zmlx_status zmlx_session_init(zmlx_model *model, const zmlx_session_params *params,
                              zmlx_session **out, char *err, size_t err_size);
void zmlx_session_free(zmlx_session *session);

/* Forget the cached context (keeps the allocations). */
void zmlx_session_reset(zmlx_session *session);
int64_t zmlx_session_n_past(const zmlx_session *session);

/*
 * Append `n` tokens to the context and run the model over them.
 * logits: NULL, or room for vocab_size floats (the last position's logits) when
 * `all_logits` is 0, or n * vocab_size floats (one row per position) when 1.
 * Fails with ZMLX_ERR_LIMIT (and leaves the context unchanged) when the context
 * would pass max_positions or memory would run out.
 */
zmlx_status zmlx_session_eval(zmlx_session *session, const int32_t *ids, size_t n,
                              float *logits, int all_logits);
/* zmlx_session_eval, then the greedy next token (zmlx_logits_argmax of the last
   position's logits) into *next; a device backend takes the argmax on the device and
   copies back one id instead of the logits. */
zmlx_status zmlx_session_eval_greedy(zmlx_session *session, const int32_t *ids, size_t n,
                                     int32_t *next);
/* The message of the last failed call on this session ("" if none). */
const char *zmlx_session_error(const zmlx_session *session);
/* Peak bytes held by this session's cache and scratch buffers so far. */
int64_t zmlx_session_peak_bytes(const zmlx_session *session);

/* ---------------------------------------------------------------- validate */

#define ZMLX_VALIDATE_MAX_RUNS 32

/* One greedy run's timings. */
typedef struct zmlx_run_times {
    double prefill_tok_s, decode_tok_s;
} zmlx_run_times;

typedef struct zmlx_validate_params {
    const char *patterns;  /* the patched set: "default" (family preset) or a list */
    const int32_t *prompt; /* prompt ids */
    size_t n_prompt;
    int32_t max_tokens;    /* greedy tokens per run (EOS ignored), default 200 */
    int32_t runs;          /* runs of each side after the warm-up, default 3 */
    int32_t warmup;        /* warm-up runs of each side, default 1 */
    /* called before each run (phase "warmup", "baseline" or "patched"); may be NULL */
    void (*progress)(void *user, const char *phase, int run, int runs);
    void *user;
} zmlx_validate_params;

typedef struct zmlx_validate_result {
    char patterns[256];   /* the patched set, resolved ("moe_mlp,swiglu_mlp,...") */
    int32_t runs, gen_tokens;
    zmlx_run_times baseline[ZMLX_VALIDATE_MAX_RUNS], patched[ZMLX_VALIDATE_MAX_RUNS];
    double median_prefill_baseline, median_decode_baseline;
    double median_prefill_patched, median_decode_patched;
    double decode_speedup;   /* median patched / median baseline decode tok/s */
    double prefill_change;   /* median patched / median baseline prefill - 1 */
    double peak_mem_mb_baseline, peak_mem_mb_patched; /* weights + session buffers */
    int64_t matched, total;  /* tokens equal to the reference over every run */
    int32_t first_divergence;     /* token index of the first mismatch, -1 if none */
    int32_t first_divergence_run; /* which patched run (or -1 - baseline run) */
    int32_t pass;            /* 1 PASS, 0 FAIL */
} zmlx_validate_result;

zmlx_validate_params zmlx_validate_default_params(void);
/*
 * Baseline (no patterns) vs patched, interleaved: warm-up, then `runs` x (baseline,
 * patched), each a fresh greedy generation of max_tokens from the prompt.  The first
 * baseline run's tokens are the reference; every run of either side must reproduce them
 * (PASS) or the first divergence is reported (FAIL).  The model's pattern set is restored
 * afterwards.
 */
zmlx_status zmlx_validate(zmlx_model *model, const zmlx_validate_params *params,
                          zmlx_validate_result *result, char *err, size_t err_size);

/* ---------------------------------------------------------------- measuring */

/* This machine's memory read bandwidth in bytes/s: `threads` threads (0 = all cores)
 * stream a buffer of `bytes` (at least 64 MiB; use several times the caches) for about
 * `seconds`; the best pass is returned (0 if the buffer could not be allocated). */
double zmlx_measure_read_bandwidth(int threads, size_t bytes, double seconds);

/* ---------------------------------------------------------------- sampling */

typedef struct zmlx_sampler zmlx_sampler;

typedef struct zmlx_sampler_params {
    float temperature; /* 0 = greedy (argmax, lowest id on ties) */
    int32_t top_k;     /* 0 = off */
    float top_p;       /* 1 = off */
    uint64_t seed;
} zmlx_sampler_params;

zmlx_sampler_params zmlx_sampler_default_params(void);
zmlx_status zmlx_sampler_init(const zmlx_sampler_params *params, int32_t vocab_size,
                              zmlx_sampler **out);
void zmlx_sampler_free(zmlx_sampler *sampler);
/* Choose the next token from one row of logits (not modified). */
int32_t zmlx_sampler_sample(zmlx_sampler *sampler, const float *logits);
/* Whether these parameters sample greedily (temperature 0 or top_k 1): the token is then
   zmlx_logits_argmax of the logits (zmlx_session_eval_greedy can return it directly). */
int zmlx_sampler_params_greedy(const zmlx_sampler_params *params);
/* The greedy token: the first index of the largest of logits[0 .. n) (a NaN never wins;
   logits[0] NaN gives 0). */
int32_t zmlx_logits_argmax(const float *logits, int32_t n);

/* ---------------------------------------------------------------- tokenizer */

/*
 * Hugging Face tokenizer.json byte-level BPE (GLM-4.7, DeepSeek-V3), encoding exactly as
 * tokenizers 0.23 does with add_special_tokens=False (the post_processor is not applied;
 * chat templates add BOS and role tokens as text), or the byte-level fallback of builtin
 * models.  A loaded tokenizer is read-only: encode and decode may run on several threads.
 */
typedef struct zmlx_tokenizer zmlx_tokenizer;

/* `path` is a tokenizer.json file or a directory holding one.  Anything in the file that
 * would tokenize differently from Hugging Face (a WordPiece model, an NFC normalizer, a
 * Metaspace pre-tokenizer, ...) fails with ZMLX_ERR_UNSUPPORTED naming the field.
 * A directory with no tokenizer.json but a tiktoken.model (Kimi-K2.5), or the path of a
 * tiktoken.model, loads that, with the
 * special tokens of its tokenizer_config.json, encoding exactly as tokenization_kimi.py
 * does (tiktoken, Kimi's pre-tokenizer pattern; ids 163584.. are the 256 specials). */
zmlx_status zmlx_tokenizer_load(const char *path, zmlx_tokenizer **out, char *err,
                                size_t err_size);
/* The builtin models' fallback: ids 0-255 are the raw bytes, other ids decode as "<id>".
 * vocab_size must be at least 256 (else ZMLX_ERR_INVALID_ARG). */
zmlx_status zmlx_tokenizer_load_bytes(zmlx_tokenizer **out, int32_t vocab_size);
void zmlx_tokenizer_free(zmlx_tokenizer *t);

/* The most ids encode can produce for text_len bytes of text. */
size_t zmlx_tokenizer_encode_bound(size_t text_len);
/*
 * Text (any bytes; invalid UTF-8 is encoded byte-wise and decodes back unchanged) to ids.
 * parse_special = 1: special tokens written in the text ("[gMASK]", "<|user|>") become
 * their ids; 0: they are tokenized as plain text (HF split_special_tokens=True;
 * non-special added tokens still match).  When cap is too small: ZMLX_ERR_LIMIT with
 * *n_out = the number of ids needed (ids may be NULL when cap is 0).
 */
zmlx_status zmlx_tokenizer_encode(const zmlx_tokenizer *t, const char *text, size_t len,
                                  int parse_special, int32_t *ids, size_t cap, size_t *n_out);
/*
 * Ids to bytes (ByteLevel decoding; special tokens give their text).  Writes *n_out bytes
 * and a terminating NUL when cap > *n_out.  When cap < *n_out: ZMLX_ERR_LIMIT with
 * *n_out = bytes needed (call with out = NULL, cap = 0 to size the buffer).  Ids the
 * tokenizer does not know decode to nothing (as in HF); a negative id is
 * ZMLX_ERR_INVALID_ARG.  Unlike HF, invalid UTF-8 is returned as is, not as U+FFFD.
 */
zmlx_status zmlx_tokenizer_decode(const zmlx_tokenizer *t, const int32_t *ids, size_t n,
                                  char *out, size_t cap, size_t *n_out);
/* Id of an exact token ("[gMASK]", "<think>"): added tokens first, then the vocabulary;
 * -1 if absent.  For the byte tokenizer, a one-byte string gives that byte. */
int32_t zmlx_tokenizer_token_id(const zmlx_tokenizer *t, const char *token);
/* One more than the largest id the tokenizer knows (vocab_size for the byte tokenizer). */
int32_t zmlx_tokenizer_vocab_size(const zmlx_tokenizer *t);

/* Streaming decode for generation: push ids one by one; each push returns the text that
 * is complete so far, holding back a UTF-8 character split across tokens.  All pushes
 * plus the flush give exactly zmlx_tokenizer_decode of the same ids. */
typedef struct zmlx_detok_stream zmlx_detok_stream;

zmlx_status zmlx_detok_stream_init(const zmlx_tokenizer *t, zmlx_detok_stream **out);
void zmlx_detok_stream_free(zmlx_detok_stream *s);
/* *text (not NUL-terminated, *len bytes) stays valid until the next call on s. */
zmlx_status zmlx_detok_stream_push(zmlx_detok_stream *s, int32_t id, const char **text,
                                   size_t *len);
/* Whatever is still held back (an incomplete character, as is); the stream restarts. */
zmlx_status zmlx_detok_stream_flush(zmlx_detok_stream *s, const char **text, size_t *len);

/* ---------------------------------------------------------------- chat */

/*
 * Chat templates written natively (no template engine): a conversation becomes the text
 * the model was trained on, special tokens written as text — encode it with
 * parse_special = 1.  Each template reproduces its reference for plain conversations
 * (system / user / assistant turns, no tools, no images):
 *   GLM47         GLM-4.7(-Flash) chat_template.jinja: [gMASK]<sop>, <|system|>, <|user|>,
 *                 <|assistant|> with no newlines; generation prompt <|assistant|><think>, or
 *                 <|assistant|></think> with thinking off
 *   DEEPSEEK_V32  mlx-lm's deepseek_v32.py encoding: <｜begin▁of▁sentence｜>{system}
 *                 <｜User｜>{msg}<｜Assistant｜> then <think> (thinking, last user turn) or
 *                 </think>; assistant turns end with <｜end▁of▁sentence｜>
 *   KIMI_K25      Kimi-K2.5 chat_template.jinja: a default system turn when none is given,
 *                 <|im_user|>user<|im_middle|>{msg}<|im_end|>, assistant turns
 *                 <|im_assistant|>assistant<|im_middle|><think></think>{msg}<|im_end|>;
 *                 generation prompt <|im_assistant|>assistant<|im_middle|><think>, or
 *                 ...<think></think> with thinking off
 */
typedef enum zmlx_chat_template {
    ZMLX_CHAT_GLM47 = 0,
    ZMLX_CHAT_DEEPSEEK_V32,
    ZMLX_CHAT_KIMI_K25,
} zmlx_chat_template;

typedef enum zmlx_chat_role {
    ZMLX_CHAT_SYSTEM = 0,
    ZMLX_CHAT_USER,
    ZMLX_CHAT_ASSISTANT,
} zmlx_chat_role;

typedef struct zmlx_chat_message {
    zmlx_chat_role role;
    const char *content;   /* UTF-8, NUL-terminated; NULL = "" */
    const char *reasoning; /* assistant turns: the thinking text, or NULL (templates that
                              keep it for the turns after the last user turn use it) */
} zmlx_chat_message;

typedef struct zmlx_chat_params {
    zmlx_chat_template tmpl;
    int add_generation_prompt; /* end with the opening of an assistant turn (default 1) */
    int thinking;              /* 1: the model thinks first (default); 0: thinking off */
    /*
     * 1: the messages continue a context that already holds the conversation so far,
     * ending with an assistant reply exactly as the model generated it (its stop token not
     * included).  The text then starts by closing that reply (<｜end▁of▁sentence｜>,
     * <|im_end|>; GLM needs nothing) and has no conversation prefix ([gMASK]<sop>, BOS,
     * Kimi's default system turn).  This is how a chat keeps its KV cache across turns.
     */
    int continuation;
} zmlx_chat_params;

zmlx_chat_params zmlx_chat_default_params(zmlx_chat_template tmpl);
/* The template of a model family: zmlx_model_info.model_type "glm4_moe_lite",
 * "deepseek_v32" or "kimi_k25"; other types fail with ZMLX_ERR_UNSUPPORTED. */
zmlx_status zmlx_chat_template_for(const char *model_type, zmlx_chat_template *out);
/* "glm47", "deepseek_v32" or "kimi_k25". */
const char *zmlx_chat_template_name(zmlx_chat_template tmpl);
/* The conversation as text.  Writes *n_out bytes and a NUL when cap > *n_out; when cap is
 * too small: ZMLX_ERR_LIMIT with *n_out = bytes needed (out may be NULL when cap is 0).
 * ZMLX_ERR_INVALID_ARG for a bad role or template. */
zmlx_status zmlx_chat_format(const zmlx_chat_params *params, const zmlx_chat_message *msgs,
                             size_t n_msgs, char *out, size_t cap, size_t *n_out);
/*
 * The ids that end an assistant reply: the model's end-of-sequence ids (config.json), those
 * of model_dir/generation_config.json when that file exists (model_dir NULL or a
 * "builtin:" spec: none), and the template's end-of-turn tokens that the tokenizer knows
 * (GLM <|user|> <|observation|>, DeepSeek <｜end▁of▁sentence｜>, Kimi <|im_end|>), each id
 * once.  Writes at most cap ids, *n_out = how many there are.  A malformed
 * generation_config.json fails with ZMLX_ERR_FORMAT naming the file and field.
 */
zmlx_status zmlx_chat_stop_ids(zmlx_chat_template tmpl, const zmlx_model *model,
                               const char *model_dir, const zmlx_tokenizer *tok, int32_t *ids,
                               size_t cap, size_t *n_out, char *err, size_t err_size);

#ifdef __cplusplus
}
#endif
#endif /* ZMLX_H */
