/* The decoder's fast path: one scan of a Solar-X payload, no allocation, no jansson tree. It
 * decodes exactly what the jansson path (decode.c) would accept, to memcmp-equal readings, and
 * says "not sure" about everything else (anything invalid or unusual), which decode.c then
 * decides with jansson and its reasons. The field rules are decode.c's (decode_internal.h).
 *
 * What it accepts is a strict subset of what jansson 2.14 loads with JSON_REJECT_DUPLICATES:
 * RFC 8259 syntax over the whole payload, whitespace ' ', '\t', '\n', '\r', strings of printable
 * ASCII without escapes, no key twice in one object, at most SCAN_MAX_DEPTH levels, integers of
 * at most 18 digits (inside strtoll's range), reals without an exponent (strtod cannot overflow).
 * Numbers are typed as jansson types them: a '.', 'e' or 'E' makes a real. */
#include <float.h>
#include <string.h>

#include "decode_internal.h"

/* Reals are converted by exact double arithmetic (see exact_real): no excess precision. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "decode_fast.c needs FLT_EVAL_METHOD == 0 (double arithmetic in double precision)"
#endif

enum {
    SCAN_MAX_DEPTH = 16,      /* nesting of objects and arrays */
    SCAN_MAX_KEYS = 256,      /* keys of all the objects open at once */
    SCAN_MAX_STRING = 1024,   /* bytes of one string */
    SCAN_MAX_NUMBER = 64,     /* bytes of one number */
    SCAN_MAX_INT_DIGITS = 18, /* 10^18 - 1 < LLONG_MAX: an integer strtoll reads exactly */
    TIMESTAMP_MAX = 63,       /* longest time_stamp text tried here */
};

struct span {
    const char *text;
    size_t len;
};

struct scan {
    const char *p, *end;
    unsigned depth;
    size_t n_keys;
    struct span keys[SCAN_MAX_KEYS]; /* keys of the open objects, innermost last */
};

enum token_type {
    TOKEN_STRING,
    TOKEN_INTEGER, /* a number without '.', 'e', 'E' (jansson's integer) */
    TOKEN_REAL,    /* a number with a fraction and no exponent (a real that cannot overflow) */
    TOKEN_TRUE,
    TOKEN_FALSE,
    TOKEN_NULL,
};

/* A scalar value; for strings, text is between the quotes. */
struct token {
    enum token_type type;
    struct span text;
};

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline void skip_space(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\n' || *sc->p == '\r' || *sc->p == '\t'))
        sc->p++;
}

/* Whether the next byte is c (after whitespace); consumes it if so. */
static inline bool accept(struct scan *sc, char c)
{
    skip_space(sc);
    if (sc->p < sc->end && *sc->p == c) {
        sc->p++;
        return true;
    }
    return false;
}

/* A string at sc->p ('"'): printable ASCII, no escape. */
static bool scan_string(struct scan *sc, struct span *out)
{
    const char *start = ++sc->p;
    const char *limit = sc->end - start > SCAN_MAX_STRING ? start + SCAN_MAX_STRING : sc->end;
    for (const char *q = start; q < limit; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') {
            out->text = start;
            out->len = (size_t)(q - start);
            sc->p = q + 1;
            return true;
        }
        if (c < 0x20 || c >= 0x80 || c == '\\')
            return false;
    }
    return false;
}

static const char *skip_digits(const char *q, const char *end)
{
    while (q < end && is_digit(*q))
        q++;
    return q;
}

/* A number at sc->p, RFC 8259 grammar; integers of at most SCAN_MAX_INT_DIGITS digits and reals
 * without an exponent only. */
static bool scan_number(struct scan *sc, struct token *out)
{
    const char *q = sc->p, *end = sc->end;
    if (q < end && *q == '-')
        q++;
    if (q >= end || !is_digit(*q))
        return false;
    const char *digits = q;
    if (*q == '0')
        q++;
    else
        q = skip_digits(q, end);
    size_t int_digits = (size_t)(q - digits);
    out->type = TOKEN_INTEGER;
    if (q < end && *q == '.') {
        const char *frac = ++q;
        q = skip_digits(q, end);
        if (q == frac)
            return false;
        out->type = TOKEN_REAL;
    }
    if (q < end && (*q == 'e' || *q == 'E'))
        return false; /* jansson may call it an overflow: its decision */
    if (out->type == TOKEN_INTEGER && int_digits > SCAN_MAX_INT_DIGITS)
        return false;
    if (q - sc->p > SCAN_MAX_NUMBER)
        return false;
    out->text.text = sc->p;
    out->text.len = (size_t)(q - sc->p);
    sc->p = q;
    return true;
}

static bool scan_literal(struct scan *sc, const char *word, size_t len)
{
    if ((size_t)(sc->end - sc->p) < len || memcmp(sc->p, word, len) != 0)
        return false;
    sc->p += len;
    return true;
}

/* A scalar at sc->p (after whitespace); false for an object, an array or bad syntax. */
static bool scan_scalar(struct scan *sc, struct token *out)
{
    skip_space(sc);
    if (sc->p >= sc->end)
        return false;
    out->text.text = sc->p;
    out->text.len = 0;
    switch (*sc->p) {
    case '"':
        out->type = TOKEN_STRING;
        return scan_string(sc, &out->text);
    case 't':
        out->type = TOKEN_TRUE;
        return scan_literal(sc, "true", 4);
    case 'f':
        out->type = TOKEN_FALSE;
        return scan_literal(sc, "false", 5);
    case 'n':
        out->type = TOKEN_NULL;
        return scan_literal(sc, "null", 4);
    default:
        return scan_number(sc, out);
    }
}

/* Called for each member of an object with its key, sc->p at its value; consumes the value. */
typedef bool (*member_fn)(struct scan *sc, struct span key, void *ctx);

static bool skip_value(struct scan *sc);

static bool skip_member(struct scan *sc, struct span key, void *ctx)
{
    return skip_value(sc);
}

static bool same_text(struct span a, struct span b)
{
    if (a.len != b.len)
        return false;
    /* Keys are short (the hourly objects' "0" .. "23"): a byte loop beats a call to memcmp. */
    for (size_t i = 0; i < a.len; i++)
        if (a.text[i] != b.text[i])
            return false;
    return true;
}

/* Whether key differs from the keys already seen in the current object (from keys[first]). */
static bool key_is_new(const struct scan *sc, size_t first, struct span key)
{
    for (size_t i = first; i < sc->n_keys; i++)
        if (same_text(sc->keys[i], key))
            return false;
    return true;
}

/* An object at sc->p (after whitespace): each member goes to member(); no key twice. */
static bool scan_object(struct scan *sc, member_fn member, void *ctx)
{
    if (!accept(sc, '{') || ++sc->depth > SCAN_MAX_DEPTH)
        return false;
    size_t first = sc->n_keys;
    if (!accept(sc, '}')) {
        do {
            struct span key;
            skip_space(sc);
            if (sc->p >= sc->end || *sc->p != '"' || !scan_string(sc, &key))
                return false;
            if (!key_is_new(sc, first, key) || sc->n_keys == SCAN_MAX_KEYS)
                return false;
            sc->keys[sc->n_keys++] = key;
            if (!accept(sc, ':') || !member(sc, key, ctx))
                return false;
        } while (accept(sc, ','));
        if (!accept(sc, '}'))
            return false;
    }
    sc->n_keys = first;
    sc->depth--;
    return true;
}

static bool scan_array(struct scan *sc)
{
    if (!accept(sc, '[') || ++sc->depth > SCAN_MAX_DEPTH)
        return false;
    if (!accept(sc, ']')) {
        do {
            if (!skip_value(sc))
                return false;
        } while (accept(sc, ','));
        if (!accept(sc, ']'))
            return false;
    }
    sc->depth--;
    return true;
}

/* Any value, checked and dropped (unknown keys, the hourly objects). */
static bool skip_value(struct scan *sc)
{
    skip_space(sc);
    if (sc->p >= sc->end)
        return false;
    if (*sc->p == '{')
        return scan_object(sc, skip_member, NULL);
    if (*sc->p == '[')
        return scan_array(sc);
    struct token t;
    return scan_scalar(sc, &t);
}

static bool key_is(struct span key, const char *name, size_t len)
{
    return key.len == len && memcmp(key.text, name, len) == 0;
}
#define KEY_IS(key, literal) key_is((key), (literal), sizeof(literal) - 1)

/* ---- Values, converted exactly as decode.c converts jansson's ---- */

/* A non-negative integer token's value (at most SCAN_MAX_INT_DIGITS digits, so exact). */
static bool plain_integer(const struct token *t, long long *out)
{
    if (t->type != TOKEN_INTEGER || t->text.text[0] == '-')
        return false; /* "-0" and negatives: jansson's decision */
    long long v = 0;
    for (size_t i = 0; i < t->text.len; i++)
        v = v * 10 + (t->text.text[i] - '0');
    *out = v;
    return true;
}

/* The double strtod (so jansson) reads from a non-negative real token "I.F", when it can be
 * computed exactly: m / 10^k with m < 10^15 < 2^53 and 10^k (k <= 22) both exact doubles, so the
 * one IEEE division rounds the exact quotient to nearest, as a correctly rounded strtod does.
 * Trailing zeros of F are dropped (the same number). False when it cannot be done so. */
static bool exact_real(const struct token *t, double *out)
{
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (t->type != TOKEN_REAL || t->text.text[0] == '-')
        return false;
    const char *q = t->text.text, *end = q + t->text.len;
    while (end[-1] == '0')
        end--;
    if (end[-1] == '.')
        end--;
    uint64_t m = 0;
    int significant = 0, k = 0;
    bool fraction = false;
    for (; q < end; q++) {
        if (*q == '.') {
            fraction = true;
            continue;
        }
        m = m * 10 + (uint64_t)(*q - '0');
        if (m != 0 && ++significant > 15)
            return false;
        if (fraction)
            k++;
    }
    if (k >= (int)(sizeof(pow10) / sizeof(pow10[0])))
        return false;
    *out = (double)m / pow10[k];
    return true;
}

/* A required quantity: jansson's integer or real rule, then the bound. */
static bool quantity(const struct token *t, enum decode_bound bound, fixed_t *out)
{
    long long i;
    double d;
    if (plain_integer(t, &i)) {
        if (!decode_quantity_from_integer(i, out))
            return false;
    } else if (exact_real(t, &d)) {
        if (!fixed_from_double(d, out))
            return false;
    } else {
        return false;
    }
    return decode_quantity_within(*out, bound);
}

static bool device_id(const struct token *t, int32_t *out)
{
    long long i;
    if (!plain_integer(t, &i) || !decode_id_in_range(i))
        return false;
    *out = (int32_t)i;
    return true;
}

static bool is_charging(const struct token *t, uint8_t *out)
{
    long long i;
    if (t->type == TOKEN_TRUE || t->type == TOKEN_FALSE) {
        *out = t->type == TOKEN_TRUE;
        return true;
    }
    return plain_integer(t, &i) && decode_is_charging_from_integer(i, out);
}

static bool status(const struct token *t, uint8_t *out)
{
    return t->type == TOKEN_STRING && decode_status_from_word(t->text.text, t->text.len, out);
}

static bool timestamp(const struct decode_config *cfg, const struct token *t, int64_t *ts)
{
    char text[TIMESTAMP_MAX + 1];
    if (t->type != TOKEN_STRING || t->text.len > TIMESTAMP_MAX)
        return false;
    memcpy(text, t->text.text, t->text.len);
    text[t->text.len] = '\0';
    return clock_parse_timestamp(cfg->zone, text, ts, NULL, 0) &&
           decode_timestamp_rule(cfg, *ts) == DECODE_OK;
}

/* ---- The three schemas ---- */

/* Fields of one battery object. */
enum {
    HAS_CAPACITY = 1 << 0,
    HAS_MAX_CHARGE = 1 << 1,
    HAS_ENERGY = 1 << 2,
    HAS_IS_CHARGING = 1 << 3,
    HAS_STATUS = 1 << 4,
    HAS_MAX_OUTPUT = 1 << 5,
    HAS_BATTERY_ALL = (1 << 6) - 1,
};

struct battery_fields {
    struct reading *r;
    unsigned seen;
};

static bool battery_member(struct scan *sc, struct span key, void *ctx)
{
    struct battery_fields *b = ctx;
    struct token t;
    if (KEY_IS(key, "capacity_kwh")) {
        b->seen |= HAS_CAPACITY;
        return scan_scalar(sc, &t) && quantity(&t, DECODE_BOUND_POSITIVE, &b->r->capacity_kwh);
    }
    if (KEY_IS(key, "max_charge_speed_w")) {
        b->seen |= HAS_MAX_CHARGE;
        return scan_scalar(sc, &t) &&
               quantity(&t, DECODE_BOUND_NON_NEGATIVE, &b->r->max_charge_speed_w);
    }
    if (KEY_IS(key, "current_energy_wh")) {
        b->seen |= HAS_ENERGY;
        return scan_scalar(sc, &t) && quantity(&t, DECODE_BOUND_NON_NEGATIVE, &b->r->energy_wh);
    }
    if (KEY_IS(key, "is_charging")) {
        b->seen |= HAS_IS_CHARGING;
        return scan_scalar(sc, &t) && is_charging(&t, &b->r->is_charging);
    }
    if (KEY_IS(key, "status")) {
        b->seen |= HAS_STATUS;
        return scan_scalar(sc, &t) && status(&t, &b->r->status);
    }
    if (KEY_IS(key, "max_output_w")) {
        b->seen |= HAS_MAX_OUTPUT;
        return scan_scalar(sc, &t) && quantity(&t, DECODE_BOUND_NON_NEGATIVE, &b->r->max_output_w);
    }
    return skip_value(sc);
}

/* The readings of a message as they are found; home_id and ts are set at the end (the keys may
 * come in any order). */
struct message {
    const struct decode_config *cfg;
    enum reading_kind kind;
    struct reading *out;
    size_t n;
    bool has_ts, has_home_id, has_panel_id, has_consumption, has_accumulated, has_batteries;
    int64_t ts;
    int32_t home_id, panel_id;
    fixed_t consumption, accumulated;
};

static bool batteries_member(struct scan *sc, struct span key, void *ctx)
{
    struct message *m = ctx;
    struct reading r;
    memset(&r, 0, sizeof(r));
    r.kind = READING_BATTERY;
    if (m->n == DECODE_MAX_READINGS || !decode_battery_id(key.text, key.len, &r.device_id))
        return false;
    struct battery_fields b = {.r = &r, .seen = 0};
    skip_space(sc);
    if (!scan_object(sc, battery_member, &b) || b.seen != HAS_BATTERY_ALL ||
        !decode_energy_within_capacity(r.energy_wh, r.capacity_kwh))
        return false;
    decode_insert_by_device(m->out, &m->n, &r);
    return true;
}

static bool message_member(struct scan *sc, struct span key, void *ctx)
{
    struct message *m = ctx;
    struct token t;
    if (KEY_IS(key, "time_stamp")) {
        m->has_ts = true;
        return scan_scalar(sc, &t) && timestamp(m->cfg, &t, &m->ts);
    }
    if (KEY_IS(key, "home_id")) {
        m->has_home_id = true;
        return scan_scalar(sc, &t) && device_id(&t, &m->home_id);
    }
    if (m->kind == READING_BATTERY) {
        if (KEY_IS(key, "batteries")) {
            m->has_batteries = true;
            return scan_object(sc, batteries_member, m) && m->n > 0;
        }
        return skip_value(sc);
    }
    if (m->kind == READING_SOLAR && KEY_IS(key, "panel_id")) {
        m->has_panel_id = true;
        return scan_scalar(sc, &t) && device_id(&t, &m->panel_id);
    }
    if (KEY_IS(key, "current_consumption_w")) {
        m->has_consumption = true;
        return scan_scalar(sc, &t) && quantity(&t, DECODE_BOUND_NON_NEGATIVE, &m->consumption);
    }
    if (KEY_IS(key, "consumption_accumulated_w")) {
        m->has_accumulated = true;
        return scan_scalar(sc, &t) && quantity(&t, DECODE_BOUND_NON_NEGATIVE, &m->accumulated);
    }
    return skip_value(sc);
}

/* The message's readings from what was found, as decode.c builds them. */
static bool finish_message(struct message *m, size_t *n_out)
{
    if (!m->has_ts)
        return false;
    int32_t home_id = m->has_home_id ? m->home_id : m->cfg->default_home_id;
    if (m->kind == READING_BATTERY) {
        if (!m->has_batteries)
            return false;
        for (size_t i = 0; i < m->n; i++) {
            m->out[i].home_id = home_id;
            m->out[i].ts = m->ts;
        }
        *n_out = m->n;
        return true;
    }
    if (!m->has_consumption || !m->has_accumulated)
        return false;
    struct reading *r = &m->out[0];
    memset(r, 0, sizeof(*r));
    r->kind = m->kind;
    r->home_id = home_id;
    r->device_id = m->kind == READING_HOME ? home_id
                   : m->has_panel_id       ? m->panel_id
                                           : m->cfg->default_panel_id;
    r->ts = m->ts;
    r->energy_wh = m->consumption;
    r->accumulated_wh = m->accumulated;
    *n_out = 1;
    return true;
}

bool decode_fast(const struct decode_config *cfg, enum reading_kind kind, const char *payload,
                 size_t len, struct reading *out, size_t *n_out)
{
    struct scan sc = {.p = payload, .end = payload + len, .depth = 0, .n_keys = 0};
    struct message m = {.cfg = cfg, .kind = kind, .out = out};
    skip_space(&sc);
    if (!scan_object(&sc, message_member, &m))
        return false;
    skip_space(&sc);
    if (sc.p != sc.end)
        return false;
    return finish_message(&m, n_out);
}
