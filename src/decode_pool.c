/* Decoding off the loop thread: chunks of copied messages, decoded by worker threads, taken back
 * by the loop in submission order (see decode_pool.h). One mutex guards the submission queue and
 * the chunks' states; a chunk's buffers belong to the loop while staged or taken and to one
 * worker while it is being decoded. */
#include "solarx/decode_pool.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* Buffers of a chunk larger than this many times their usual size are freed when the chunk is
 * released, so that one huge message does not keep its memory for good. */
#define SHRINK_FACTOR 4
/* Readings of one message on average that a chunk's reading array starts with. */
#define READINGS_PER_MESSAGE 4

enum chunk_state {
    CHUNK_STAGING, /* the loop fills it */
    CHUNK_QUEUED,  /* submitted, waiting for a worker */
    CHUNK_DECODING,
    CHUNK_DONE, /* decoded, waiting for the loop (or taken by it) */
};

/* One staged message: where its bytes are in the chunk, and its decoded outcome. */
struct entry {
    enum reading_kind kind;
    int32_t partition;
    int64_t offset;
    int64_t now;
    size_t key_at, key_len; /* key_at SIZE_MAX: no key */
    size_t payload_at, len;
    enum decode_error error;
    size_t reason_at;  /* into reasons */
    size_t reading_at; /* into readings */
    size_t reading_count;
};

struct decode_pool_chunk {
    const struct decode_pool_settings *settings; /* the pool's */
    enum chunk_state state;
    struct entry *entries; /* [0..count), capacity settings->chunk_messages */
    size_t count;
    size_t decoded; /* entries with a kept outcome; fewer than count only when memory ran out */
    char *bytes;    /* keys and NUL-terminated payloads */
    size_t bytes_len, bytes_cap;
    struct reading *readings;
    size_t readings_len, readings_cap;
    char *reasons;
    size_t reasons_len, reasons_cap;
    /* decode_pool_chunk_result's storage for a message decoded on the loop's thread */
    struct reading scratch[DECODE_MAX_READINGS];
    char scratch_reason[DECODE_REASON_SIZE];
};

struct decode_pool {
    struct decode_pool_settings settings;
    int wake_fd;
    pthread_t *threads;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t work; /* a chunk was queued, or stop */
    pthread_cond_t done; /* a chunk was decoded */
    bool stop;
    /* Every chunk: max_submitted + 1, so that a staging chunk always exists. */
    struct decode_pool_chunk *chunks;
    size_t chunk_total;
    struct decode_pool_chunk **free; /* stack of unused chunks */
    size_t free_count;
    struct decode_pool_chunk *staging;
    /* Submitted chunks in submission order: a ring of max_submitted. */
    struct decode_pool_chunk **submitted;
    size_t max_submitted, head, submitted_count;
};

static bool grow(void **buf, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap : first;
    while (cap2 < need)
        cap2 *= 2;
    void *p = realloc(*buf, cap2 * elem);
    if (!p)
        return false;
    *buf = p;
    *cap = cap2;
    return true;
}

/* Empties c for reuse. Bytes and readings grown far beyond their usual size (a huge message)
 * are given back; the reasons never outgrow chunk_messages reasons. */
static void chunk_reset(struct decode_pool_chunk *c)
{
    const struct decode_pool_settings *st = c->settings;
    c->count = c->decoded = c->bytes_len = c->readings_len = c->reasons_len = 0;
    c->state = CHUNK_STAGING;
    if (c->bytes_cap > SHRINK_FACTOR * st->chunk_bytes) {
        free(c->bytes);
        c->bytes = NULL;
        c->bytes_cap = 0;
    }
    if (c->readings_cap > SHRINK_FACTOR * READINGS_PER_MESSAGE * st->chunk_messages) {
        free(c->readings);
        c->readings = NULL;
        c->readings_cap = 0;
    }
}

static void chunk_free_buffers(struct decode_pool_chunk *c)
{
    free(c->entries);
    free(c->bytes);
    free(c->readings);
    free(c->reasons);
}

enum decode_error decode_pool_decode_one(const struct decode_pool_settings *settings,
                                         const struct decode_pool_message *msg, struct reading *out,
                                         size_t *n_out, char *reason, size_t reason_size)
{
    *n_out = 0;
    enum decode_error e =
        decode_check_size(msg->len, settings->max_message_bytes, reason, reason_size);
    if (e != DECODE_OK)
        return e;
    struct decode_config cfg = settings->decode;
    cfg.now = msg->now;
    return decode_message(&cfg, msg->kind, msg->payload ? msg->payload : "", msg->len, out, n_out,
                          reason, reason_size);
}

static struct decode_pool_message entry_message(const struct decode_pool_chunk *c,
                                                const struct entry *e)
{
    return (struct decode_pool_message){
        .kind = e->kind,
        .partition = e->partition,
        .offset = e->offset,
        .key = e->key_at == SIZE_MAX ? NULL : c->bytes + e->key_at,
        .key_len = e->key_len,
        .payload = c->bytes + e->payload_at,
        .len = e->len,
        .now = e->now,
    };
}

/* A worker's job: every message of c, outcomes kept in c. Stops early (c->decoded < c->count)
 * when memory runs out; the loop decodes the rest itself. */
static void chunk_decode(struct decode_pool_chunk *c)
{
    struct reading out[DECODE_MAX_READINGS];
    char reason[DECODE_REASON_SIZE];
    for (size_t i = 0; i < c->count; i++) {
        struct entry *e = &c->entries[i];
        struct decode_pool_message m = entry_message(c, e);
        size_t n = 0;
        reason[0] = '\0';
        e->error = decode_pool_decode_one(c->settings, &m, out, &n, reason, sizeof(reason));
        size_t reason_len = e->error == DECODE_OK ? 0 : strlen(reason);
        if (!grow((void **)&c->readings, &c->readings_cap, c->readings_len + n, sizeof(*out),
                  READINGS_PER_MESSAGE * c->settings->chunk_messages) ||
            !grow((void **)&c->reasons, &c->reasons_cap, c->reasons_len + reason_len + 1, 1, 4096))
            return;
        e->reading_at = c->readings_len;
        e->reading_count = n;
        if (n > 0)
            memcpy(c->readings + c->readings_len, out, n * sizeof(*out));
        c->readings_len += n;
        e->reason_at = c->reasons_len;
        memcpy(c->reasons + c->reasons_len, reason, reason_len);
        c->reasons[c->reasons_len + reason_len] = '\0';
        c->reasons_len += reason_len + 1;
        c->decoded = i + 1;
    }
}

/* The oldest queued chunk, or NULL. Under lock. */
static struct decode_pool_chunk *next_queued(struct decode_pool *p)
{
    for (size_t i = 0; i < p->submitted_count; i++) {
        struct decode_pool_chunk *c = p->submitted[(p->head + i) % p->max_submitted];
        if (c->state == CHUNK_QUEUED)
            return c;
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    struct decode_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct decode_pool_chunk *c = NULL;
        while (!p->stop && !(c = next_queued(p)))
            pthread_cond_wait(&p->work, &p->lock);
        if (p->stop)
            break;
        c->state = CHUNK_DECODING;
        pthread_mutex_unlock(&p->lock);
        chunk_decode(c); /* c is this worker's alone while DECODING */
        pthread_mutex_lock(&p->lock);
        c->state = CHUNK_DONE;
        pthread_cond_broadcast(&p->done);
        uint64_t one = 1;
        /* The counter cannot overflow in practice; EAGAIN would mean it is readable anyway. */
        ssize_t w = write(p->wake_fd, &one, sizeof(one));
        (void)w;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct decode_pool *decode_pool_new(const struct decode_pool_settings *settings, char *errstr,
                                    size_t errstr_size)
{
    if (settings->threads < 1 || settings->chunk_messages < 1 || settings->chunk_bytes < 1) {
        snprintf(errstr, errstr_size,
                 "decode_pool: threads (%d), chunk_messages (%zu) and chunk_bytes (%zu) must be "
                 "at least 1",
                 settings->threads, settings->chunk_messages, settings->chunk_bytes);
        return NULL;
    }
    struct decode_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(errstr, errstr_size, "decode_pool: out of memory");
        return NULL;
    }
    p->settings = *settings;
    p->wake_fd = -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->max_submitted =
        settings->chunks_in_flight ? settings->chunks_in_flight : (size_t)settings->threads + 1;
    p->chunk_total = p->max_submitted + 1;
    p->chunks = calloc(p->chunk_total, sizeof(*p->chunks));
    p->free = calloc(p->chunk_total, sizeof(*p->free));
    p->submitted = calloc(p->max_submitted, sizeof(*p->submitted));
    p->threads = calloc((size_t)settings->threads, sizeof(*p->threads));
    if (!p->chunks || !p->free || !p->submitted || !p->threads) {
        snprintf(errstr, errstr_size, "decode_pool: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < p->chunk_total; i++) {
        struct decode_pool_chunk *c = &p->chunks[i];
        c->settings = &p->settings;
        c->entries = calloc(settings->chunk_messages, sizeof(*c->entries));
        if (!c->entries) {
            snprintf(errstr, errstr_size, "decode_pool: out of memory");
            goto fail;
        }
        p->free[p->free_count++] = c;
    }
    p->staging = p->free[--p->free_count];
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wake_fd < 0) {
        snprintf(errstr, errstr_size, "decode_pool: eventfd: %s", strerror(errno));
        goto fail;
    }
    /* jansson seeds its hash function on first use; seed it here, before any worker runs. */
    json_object_seed(0);
    for (; p->started < settings->threads; p->started++) {
        int err = pthread_create(&p->threads[p->started], NULL, worker_main, p);
        if (err) {
            snprintf(errstr, errstr_size, "decode_pool: cannot start a worker thread: %s",
                     strerror(err));
            goto fail;
        }
        pthread_setname_np(p->threads[p->started], "solarx-decode"); /* top, perf: a name */
    }
    return p;
fail:
    decode_pool_destroy(p);
    return NULL;
}

void decode_pool_destroy(struct decode_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    for (size_t i = 0; p->chunks && i < p->chunk_total; i++)
        chunk_free_buffers(&p->chunks[i]);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->lock);
    free(p->chunks);
    free(p->free);
    free(p->submitted);
    free(p->threads);
    free(p);
}

int decode_pool_fd(const struct decode_pool *p)
{
    return p->wake_fd;
}

void decode_pool_ack(struct decode_pool *p)
{
    uint64_t count;
    ssize_t r = read(p->wake_fd, &count, sizeof(count));
    (void)r; /* EAGAIN: nothing was signalled since the last ack */
}

bool decode_pool_staged_full(const struct decode_pool *p)
{
    const struct decode_pool_chunk *c = p->staging;
    return c->count >= p->settings.chunk_messages || c->bytes_len >= p->settings.chunk_bytes;
}

size_t decode_pool_staged(const struct decode_pool *p)
{
    return p->staging->count;
}

bool decode_pool_stage(struct decode_pool *p, const struct decode_pool_message *msg)
{
    struct decode_pool_chunk *c = p->staging;
    if (decode_pool_staged_full(p))
        return false;
    size_t need = c->bytes_len + msg->key_len + msg->len + 1;
    if (need < c->bytes_len || !grow((void **)&c->bytes, &c->bytes_cap, need, 1, 64 * 1024))
        return false;
    struct entry *e = &c->entries[c->count];
    *e = (struct entry){
        .kind = msg->kind,
        .partition = msg->partition,
        .offset = msg->offset,
        .now = msg->now,
        .key_at = SIZE_MAX,
        .key_len = 0,
        .len = msg->len,
    };
    if (msg->key) {
        e->key_at = c->bytes_len;
        e->key_len = msg->key_len;
        memcpy(c->bytes + c->bytes_len, msg->key, msg->key_len);
        c->bytes_len += msg->key_len;
    }
    e->payload_at = c->bytes_len;
    if (msg->len)
        memcpy(c->bytes + c->bytes_len, msg->payload, msg->len);
    c->bytes[c->bytes_len + msg->len] = '\0';
    c->bytes_len += msg->len + 1;
    c->count++;
    return true;
}

bool decode_pool_submit(struct decode_pool *p)
{
    if (p->staging->count == 0)
        return true;
    pthread_mutex_lock(&p->lock);
    bool room = p->submitted_count < p->max_submitted;
    if (room) {
        p->staging->state = CHUNK_QUEUED;
        p->submitted[(p->head + p->submitted_count) % p->max_submitted] = p->staging;
        p->submitted_count++;
        p->staging = p->free[--p->free_count]; /* one is always left: see chunk_total */
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->lock);
    return room;
}

size_t decode_pool_submitted(const struct decode_pool *p)
{
    return p->submitted_count; /* changed by the loop's thread only */
}

bool decode_pool_is_full(const struct decode_pool *p)
{
    return decode_pool_staged_full(p) && p->submitted_count >= p->max_submitted;
}

bool decode_pool_idle(const struct decode_pool *p)
{
    return p->staging->count == 0 && p->submitted_count == 0;
}

struct decode_pool_chunk *decode_pool_take(struct decode_pool *p, bool wait)
{
    struct decode_pool_chunk *c = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->submitted_count > 0) {
        c = p->submitted[p->head];
        while (wait && c->state != CHUNK_DONE)
            pthread_cond_wait(&p->done, &p->lock);
        if (c->state != CHUNK_DONE)
            c = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return c;
}

size_t decode_pool_chunk_count(const struct decode_pool_chunk *c)
{
    return c->count;
}

void decode_pool_chunk_result(struct decode_pool_chunk *c, size_t i, struct decode_pool_result *out)
{
    const struct entry *e = &c->entries[i];
    struct decode_pool_message m = entry_message(c, e);
    *out = (struct decode_pool_result){
        .kind = e->kind,
        .partition = e->partition,
        .offset = e->offset,
        .key = m.key,
        .key_len = e->key_len,
        .payload = m.payload,
        .len = e->len,
    };
    if (i < c->decoded) {
        out->error = e->error;
        out->reason = c->reasons + e->reason_at;
        out->readings = c->readings + e->reading_at;
        out->reading_count = e->reading_count;
        return;
    }
    c->scratch_reason[0] = '\0';
    out->error = decode_pool_decode_one(c->settings, &m, c->scratch, &out->reading_count,
                                        c->scratch_reason, sizeof(c->scratch_reason));
    out->reason = out->error == DECODE_OK ? "" : c->scratch_reason;
    out->readings = c->scratch;
}

void decode_pool_release(struct decode_pool *p, struct decode_pool_chunk *c)
{
    pthread_mutex_lock(&p->lock);
    bool head = p->submitted_count > 0 && p->submitted[p->head] == c;
    if (head) {
        p->head = (p->head + 1) % p->max_submitted;
        p->submitted_count--;
    }
    pthread_mutex_unlock(&p->lock);
    if (!head)
        return; /* discarded meanwhile: already back */
    chunk_reset(c);
    p->free[p->free_count++] = c;
}

void decode_pool_discard(struct decode_pool *p)
{
    chunk_reset(p->staging);
    pthread_mutex_lock(&p->lock);
    /* Queued chunks go undecoded: no worker takes them from now on (next_queued). */
    for (size_t i = 0; i < p->submitted_count; i++) {
        struct decode_pool_chunk *c = p->submitted[(p->head + i) % p->max_submitted];
        if (c->state == CHUNK_QUEUED)
            c->state = CHUNK_DONE;
    }
    /* Only the chunks being decoded are waited for. */
    for (;;) {
        bool decoding = false;
        for (size_t i = 0; i < p->submitted_count; i++)
            if (p->submitted[(p->head + i) % p->max_submitted]->state == CHUNK_DECODING)
                decoding = true;
        if (!decoding)
            break;
        pthread_cond_wait(&p->done, &p->lock);
    }
    /* No worker holds a chunk now, and none will take one: every queued chunk goes too. */
    while (p->submitted_count > 0) {
        struct decode_pool_chunk *c = p->submitted[p->head];
        p->head = (p->head + 1) % p->max_submitted;
        p->submitted_count--;
        chunk_reset(c);
        p->free[p->free_count++] = c;
    }
    pthread_mutex_unlock(&p->lock);
}
