/* Decoding off the loop thread: the loop stages Kafka messages into chunks (copies), worker threads
 * decode whole chunks (decode_check_size + decode_message), and the loop takes the decoded chunks
 * back strictly in submission order. Bounded: at most chunks_in_flight chunks submitted, plus the
 * one being staged. The loop owns staging, submission and taking; workers touch only the chunks
 * they were given. */
#ifndef SOLARX_DECODE_POOL_H
#define SOLARX_DECODE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/decode.h"
#include "solarx/reading.h"

struct decode_pool;

struct decode_pool_settings {
    int threads;              /* worker threads, >= 1 */
    size_t chunk_messages;    /* a chunk is full at this many messages (>= 1) */
    size_t chunk_bytes;       /* ... or at this many bytes of keys and payloads (>= 1) */
    size_t chunks_in_flight;  /* most chunks submitted and not yet taken back; 0: threads + 1 */
    size_t max_message_bytes; /* larger payloads are too_large, not decoded (decode_check_size) */
    struct decode_config decode; /* copied; its zone is borrowed and must outlive the pool; its
                                  * now is replaced by each message's own */
};

/* What the service uses: 512 messages or 1 MiB a chunk, one worker, 8 chunks in flight (2 made
 * the worker wait for the loop, and the loop for the worker, on a busy machine: bench/README.md).
 */
#define DECODE_POOL_CHUNK_MESSAGES 512
#define DECODE_POOL_CHUNK_BYTES (1u << 20)
#define DECODE_POOL_CHUNKS_IN_FLIGHT 8

/* One staged message, as the loop got it from librdkafka (copied by decode_pool_stage). */
struct decode_pool_message {
    enum reading_kind kind;
    int32_t partition;
    int64_t offset;
    const void *key; /* may be NULL */
    size_t key_len;
    const void *payload; /* may be NULL (an empty payload) */
    size_t len;
    int64_t now; /* Unix seconds when it was consumed: decode_config.now for it */
};

/* One decoded message of a chunk; pointers into the chunk, valid until decode_pool_release. */
struct decode_pool_result {
    enum reading_kind kind;
    int32_t partition;
    int64_t offset;
    const char *key; /* NULL when the message had none */
    size_t key_len;
    const char *payload; /* the whole payload (""-terminated copy) */
    size_t len;
    enum decode_error error;        /* DECODE_OK, or why it is a dead letter */
    const char *reason;             /* "" when error is DECODE_OK */
    const struct reading *readings; /* [0..reading_count) when error is DECODE_OK */
    size_t reading_count;
};

struct decode_pool_chunk;

/* Starts settings->threads workers. Returns NULL with errstr ("decode_pool: ...") when the
 * settings are invalid or threads, memory or the wake-up descriptor cannot be had. */
struct decode_pool *decode_pool_new(const struct decode_pool_settings *settings, char *errstr,
                                    size_t errstr_size) __attribute__((warn_unused_result));

/* Stops the workers (a chunk being decoded is finished first) and frees every chunk, staged,
 * submitted or decoded. NULL is allowed. */
void decode_pool_destroy(struct decode_pool *p);

/* A descriptor that turns readable when a chunk is decoded (an eventfd; the loop polls it and
 * calls decode_pool_ack, then takes chunks with decode_pool_take). Owned by the pool. */
int decode_pool_fd(const struct decode_pool *p);
/* Resets the descriptor's readiness (reads the eventfd). */
void decode_pool_ack(struct decode_pool *p);

/* Copies msg into the staging chunk. Returns false (nothing staged) when the staging chunk is
 * full (decode_pool_staged_full: submit it first) or memory runs out. */
bool decode_pool_stage(struct decode_pool *p, const struct decode_pool_message *msg)
    __attribute__((warn_unused_result));
/* The staging chunk has chunk_messages messages or chunk_bytes bytes. */
bool decode_pool_staged_full(const struct decode_pool *p);
/* Messages in the staging chunk. */
size_t decode_pool_staged(const struct decode_pool *p);

/* Hands the staging chunk to the workers. Returns true when it was submitted or was empty; false
 * when chunks_in_flight chunks are submitted and not yet released (it stays staged). */
bool decode_pool_submit(struct decode_pool *p);
/* The bound is reached: the staging chunk is full and cannot be submitted. Stop consuming. */
bool decode_pool_is_full(const struct decode_pool *p);
/* Chunks submitted and not yet released. */
size_t decode_pool_submitted(const struct decode_pool *p);
/* Nothing staged and nothing submitted. */
bool decode_pool_idle(const struct decode_pool *p);

/* The oldest submitted chunk, when it is decoded (NULL otherwise: none, or the oldest is still
 * being decoded, even if later ones are done). wait: block until it is decoded (NULL only when
 * nothing is submitted). The chunk stays the pool's; read it with decode_pool_chunk_*, then give
 * it back with decode_pool_release before taking the next. */
struct decode_pool_chunk *decode_pool_take(struct decode_pool *p, bool wait);
size_t decode_pool_chunk_count(const struct decode_pool_chunk *c);
/* Message i of the chunk (i < decode_pool_chunk_count), in the order it was staged. A message a
 * worker could not keep the result of (out of memory) is decoded here, on the caller's thread,
 * into storage of the chunk valid until the next call. */
void decode_pool_chunk_result(struct decode_pool_chunk *c, size_t i,
                              struct decode_pool_result *out);
/* Returns the taken chunk to the pool (its results are invalid from now on). */
void decode_pool_release(struct decode_pool *p, struct decode_pool_chunk *c);

/* Drops everything consumed and not yet taken: the staging chunk, and every submitted chunk
 * (waits for those being decoded). Nothing of them is reported. */
void decode_pool_discard(struct decode_pool *p);

/* Decodes one message on the caller's thread exactly as a worker does: size check, then
 * decode_message with msg->now. out needs DECODE_MAX_READINGS; reason DECODE_REASON_SIZE. */
enum decode_error decode_pool_decode_one(const struct decode_pool_settings *settings,
                                         const struct decode_pool_message *msg, struct reading *out,
                                         size_t *n_out, char *reason, size_t reason_size)
    __attribute__((warn_unused_result));

#endif
