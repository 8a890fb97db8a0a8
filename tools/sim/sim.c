/* Deterministic Solar-X telemetry generator (pure: no I/O). Every value is a hash of the seed and
 * the reading's coordinates, kept on a 0.01 grid as integer hundredths and printed exactly. */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/clock.h"

#define HOURS_PER_DAY 24
#define SECONDS_PER_DAY 86400
#define SUNRISE (6 * 3600)
#define SOLAR_NOON (12 * 3600)
#define SUNSET (18 * 3600)
#define PANEL_PEAK_W 10000.0 /* the "kafka panel": capacity_kwh 10 */

/* Battery figures in hundredths of Wh (per second for the speeds). */
#define BATTERY_CAPACITY (12 * 1000 * 100)
#define BATTERY_UPGRADED_CAPACITY (15 * 1000 * 100)
#define BATTERY_CHARGE_SPEED 100 /* max_charge_speed_w 1 */
#define BATTERY_OUTPUT 333       /* max_output_w 3.33 */
#define BATTERY_UPGRADED_OUTPUT 500

#define READY_SLOTS 16
#define MESSAGE_RESERVE 4096

/* Hash channels: each kind of decision draws from its own stream. */
enum sim_channel {
    CH_APPLIANCE = 1,
    CH_LOAD_JITTER,
    CH_WEATHER,
    CH_CLOUD,
    CH_BATTERY_INIT,
    CH_DUPLICATE,
    CH_DUPLICATE_GAP,
    CH_DISORDER,
    CH_DISORDER_GAP,
    CH_LATE,
    CH_MALFORMED,
};

struct sim_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

struct sim_slot {
    struct sim_message msg;
    struct sim_buf buf;
};

/* A message held back until the end of step `release` (or the end of the stream). */
struct sim_pending {
    int64_t release;
    uint64_t seq;
    struct sim_message msg;
    char *payload; /* owned */
};

struct sim_home {
    int64_t day; /* day number of the hourly maps */
    int64_t home_acc, solar_acc;
    int64_t home_hourly[HOURS_PER_DAY], solar_hourly[HOURS_PER_DAY];
    int64_t battery[SIM_BATTERIES];
    int64_t minute; /* absolute minute of the cached load figures */
    int64_t minute_w, minute_min_w, minute_max_w;
    double cloud;
    int64_t weather_day;
    double weather;
};

struct sim {
    struct sim_config cfg;
    struct sim_home *homes;
    uint64_t seed_hash;

    /* Position of the generator: step s, next home h (1-based). */
    int64_t step;
    int32_t next_home;
    bool step_closed; /* all homes of step-1 generated; release pending up to step-1 */
    char ts_text[SIM_TIME_TEXT_SIZE];
    int64_t ts_text_time;

    struct sim_slot ready[READY_SLOTS];
    size_t ready_head, ready_count;

    struct sim_pending *pending;
    size_t pending_count, pending_cap;
    uint64_t pending_seq;

    struct sim_buf scratch;
    uint64_t malformed_made[READING_KIND_COUNT];
    struct sim_stats stats;
    bool failed;
};

/* The built-in appliance table: config/home_appliances_consumption.json. */
#define HM(h, m) ((h)*60 + (m))
static const struct sim_appliance default_appliances[] = {
    {"Refrigerator", 300, 1500, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"Electric Oven", 2000, 5000, 2, {HM(16, 0), HM(21, 0)}, {HM(16, 30), HM(21, 30)}},
    {"Electric Kettle",
     1500,
     1500,
     4,
     {HM(7, 0), HM(12, 0), HM(16, 30), HM(21, 30)},
     {HM(7, 15), HM(12, 15), HM(17, 0), HM(22, 0)}},
    {"Air Conditioner", 500, 3000, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"Incandescent Light Bulbs", 60, 60, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"LED Light Bulbs", 10, 10, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"Laptop", 50, 100, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"Computer", 100, 600, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"LCD Monitor",
     50,
     300,
     3,
     {HM(10, 0), HM(16, 0), HM(22, 0)},
     {HM(12, 0), HM(20, 0), HM(24, 0)}},
    {"Router", 5, 20, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"Smartphone Charger", 5, 5, 1, {HM(0, 0)}, {HM(24, 0)}},
    {"Blow Dryer", 800, 1800, 2, {HM(7, 0), HM(15, 0)}, {HM(7, 30), HM(15, 30)}},
    {"Iron", 1000, 1000, 2, {HM(7, 0), HM(15, 0)}, {HM(7, 30), HM(15, 30)}},
    {"Washing Machine", 500, 1000, 1, {HM(17, 0)}, {HM(19, 0)}},
    {"Water Heater", 1000, 4000, 1, {HM(12, 0)}, {HM(16, 0)}},
};
#undef HM

const struct sim_appliance *sim_default_appliances(size_t *count)
{
    *count = sizeof(default_appliances) / sizeof(default_appliances[0]);
    return default_appliances;
}

int32_t sim_panel_id(int32_t homes, int32_t home_id)
{
    return homes > 1 ? home_id * 10 + 4 : 4;
}

/* ---- hashing: splitmix64 finaliser over the coordinates of a decision ---- */

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t sim_hash(const struct sim *sim, enum sim_channel channel, uint64_t a, uint64_t b,
                         uint64_t c)
{
    uint64_t h = mix64(sim->seed_hash ^ (uint64_t)channel);
    h = mix64(h ^ a);
    h = mix64(h ^ b);
    return mix64(h ^ c);
}

/* Uniform in [0, 1) with 53 bits; exact, so the same on every IEEE machine. */
static double unit_interval(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

static bool chance(const struct sim *sim, double p, enum sim_channel channel, uint64_t a,
                   uint64_t b, uint64_t c)
{
    if (p <= 0.0)
        return false;
    uint64_t threshold = (uint64_t)(p * 9007199254740992.0);
    return (sim_hash(sim, channel, a, b, c) >> 11) < threshold;
}

/* ---- calendar (proleptic Gregorian, H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool parse_digits(const char *s, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int sim_parse_time(const char *text, int64_t *out)
{
    int64_t y, mo, d, h, mi, s;
    if (strlen(text) != 19 || text[4] != '-' || text[7] != '-' || text[10] != ' ' ||
        text[13] != ':' || text[16] != ':')
        return -1;
    if (!parse_digits(text, 4, &y) || !parse_digits(text + 5, 2, &mo) ||
        !parse_digits(text + 8, 2, &d) || !parse_digits(text + 11, 2, &h) ||
        !parse_digits(text + 14, 2, &mi) || !parse_digits(text + 17, 2, &s))
        return -1;
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > clock_days_in_month(y, (int)mo) || h > 23 ||
        mi > 59 || s > 59)
        return -1;
    *out = clock_epoch_from_utc((int32_t)y, (int32_t)mo, (int32_t)d, (int32_t)h, (int32_t)mi,
                                (int32_t)s);
    return 0;
}

char *sim_format_time(int64_t t, char buf[SIM_TIME_TEXT_SIZE])
{
    struct clock_civil u;
    clock_to_utc(t, &u);
    char utc[CLOCK_TEXT_SIZE];
    const char *text =
        u.year < 0 || u.year > 9999 ? "0000-00-00 00:00:00" : clock_format_utc(t, utc, sizeof(utc));
    memcpy(buf, text, 19); /* without clock_format_utc's "+00:00" */
    buf[19] = '\0';
    return buf;
}

/* "H:MM" (hour 0..24, 24 only as 24:00) -> minute of the day. */
static const char *parse_clock(const char *p, int *minute)
{
    int hour = 0, digits = 0;
    while (*p == ' ')
        p++;
    while (*p >= '0' && *p <= '9' && digits < 2) {
        hour = hour * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || *p != ':' || p[1] < '0' || p[1] > '5' || p[2] < '0' || p[2] > '9')
        return NULL;
    int min = (p[1] - '0') * 10 + (p[2] - '0');
    if (hour > 24 || (hour == 24 && min != 0))
        return NULL;
    *minute = hour * 60 + min;
    p += 3;
    while (*p == ' ')
        p++;
    return p;
}

int sim_parse_usage_time(const char *text, struct sim_appliance *appliance)
{
    const char *p = text;
    int32_t count = 0;
    for (;;) {
        int start, end;
        p = parse_clock(p, &start);
        if (p == NULL || *p != '-')
            return -1;
        p = parse_clock(p + 1, &end);
        if (p == NULL || start >= end || count == SIM_MAX_USAGE_RANGES)
            return -1;
        appliance->range_start[count] = (int16_t)start;
        appliance->range_end[count] = (int16_t)end;
        count++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return -1;
        p++;
    }
    appliance->range_count = count;
    return 0;
}

/* ---- output buffers and exact number printing ---- */

static bool buf_reserve(struct sim_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : MESSAGE_RESERVE;
    while (cap < b->len + extra)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (data == NULL) {
        b->failed = true;
        return false;
    }
    b->data = data;
    b->cap = cap;
    return true;
}

static void put_bytes(struct sim_buf *b, const char *s, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

#define PUT_LIT(b, lit) put_bytes((b), (lit), sizeof(lit) - 1)

static void put_str(struct sim_buf *b, const char *s)
{
    put_bytes(b, s, strlen(s));
}

static void put_i64(struct sim_buf *b, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[sizeof(tmp) - 1 - n++] = '-';
    put_bytes(b, tmp + sizeof(tmp) - n, n);
}

/* Hundredths as a decimal with at most two fractional digits and no trailing zeros;
 * always_fraction keeps one ("12.0", the samples' float style) where the value is whole. */
static void put_hundredths(struct sim_buf *b, int64_t v, bool always_fraction)
{
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    if (v < 0)
        PUT_LIT(b, "-");
    put_i64(b, (int64_t)(u / 100));
    unsigned frac = (unsigned)(u % 100);
    char tmp[3] = {'.', (char)('0' + frac / 10), (char)('0' + frac % 10)};
    if (frac == 0)
        put_bytes(b, tmp, always_fraction ? 2 : 0);
    else
        put_bytes(b, tmp, frac % 10 == 0 ? 2 : 3);
}

/* ---- the physical model ---- */

static const struct sim_appliance *appliance_table(const struct sim *sim, size_t *count)
{
    if (sim->cfg.appliances != NULL) {
        *count = sim->cfg.appliance_count;
        return sim->cfg.appliances;
    }
    return sim_default_appliances(count);
}

static bool appliance_on(const struct sim_appliance *a, int minute_of_day)
{
    for (int32_t i = 0; i < a->range_count; i++)
        if (minute_of_day >= a->range_start[i] && minute_of_day < a->range_end[i])
            return true;
    return false;
}

/* Recomputes a home's per-minute figures: appliance levels (sum of ratings of the appliances on,
 * each picked in [min, max]) and the cloud factor. */
static void home_enter_minute(struct sim *sim, struct sim_home *home, int32_t home_id,
                              int64_t minute)
{
    size_t count;
    const struct sim_appliance *table = appliance_table(sim, &count);
    int minute_of_day = (int)(minute - floor_div(minute, 1440) * 1440);
    int64_t w = 0, min_w = 0, max_w = 0;
    for (size_t i = 0; i < count; i++) {
        const struct sim_appliance *a = &table[i];
        if (!appliance_on(a, minute_of_day))
            continue;
        uint64_t span = (uint64_t)(a->max_w - a->min_w) + 1;
        uint64_t h = sim_hash(sim, CH_APPLIANCE, (uint64_t)home_id, i, (uint64_t)minute);
        w += a->min_w + (int64_t)(h % span);
        min_w += a->min_w;
        max_w += a->max_w;
    }
    home->minute = minute;
    home->minute_w = w;
    home->minute_min_w = min_w;
    home->minute_max_w = max_w;
    home->cloud =
        0.8 + 0.2 * unit_interval(sim_hash(sim, CH_CLOUD, (uint64_t)home_id, 0, (uint64_t)minute));
}

/* Wh (hundredths) the home uses in second t: the minute's load with +-3% jitter, kept within
 * the ratings of the appliances on. */
static int64_t home_load(struct sim *sim, struct sim_home *home, int32_t home_id, int64_t t)
{
    int64_t minute = floor_div(t, 60);
    if (minute != home->minute)
        home_enter_minute(sim, home, home_id, minute);
    uint64_t h = sim_hash(sim, CH_LOAD_JITTER, (uint64_t)home_id, 0, (uint64_t)t);
    int64_t w = home->minute_w + home->minute_w * ((int64_t)(h % 601) - 300) / 10000;
    if (w < home->minute_min_w)
        w = home->minute_min_w;
    if (w > home->minute_max_w)
        w = home->minute_max_w;
    return (w + 18) / 36; /* W for one second -> hundredths of Wh, rounded */
}

/* Wh (hundredths) the home's panel yields in second t: zero at night, a bell around noon
 * ((1 - x^2)^2 between sunrise and sunset) scaled by the day's weather and the minute's clouds.
 * Only IEEE basic operations, so the figures are the same on every machine. */
static int64_t solar_yield(struct sim *sim, struct sim_home *home, int32_t home_id, int64_t t)
{
    int64_t day = floor_div(t, SECONDS_PER_DAY);
    int64_t tod = t - day * SECONDS_PER_DAY;
    if (tod <= SUNRISE || tod >= SUNSET)
        return 0;
    if (home->weather_day != day) {
        home->weather_day = day;
        home->weather = 0.55 + 0.45 * unit_interval(sim_hash(sim, CH_WEATHER, (uint64_t)home_id, 0,
                                                             (uint64_t)day));
    }
    double x = (double)(tod - SOLAR_NOON) / (double)(SOLAR_NOON - SUNRISE);
    double bell = (1.0 - x * x) * (1.0 - x * x);
    double w = PANEL_PEAK_W * bell * home->weather * home->cloud;
    return (int64_t)(w / 36.0 + 0.5);
}

static int64_t battery_capacity(const struct sim *sim, int b, int64_t t)
{
    return b == 0 && t >= sim->cfg.battery_upgrade ? BATTERY_UPGRADED_CAPACITY : BATTERY_CAPACITY;
}

static int64_t battery_output(const struct sim *sim, int b, int64_t t)
{
    return b == 0 && t >= sim->cfg.battery_upgrade ? BATTERY_UPGRADED_OUTPUT : BATTERY_OUTPUT;
}

/* Moves the second's surplus into batteries 1..3 or covers its deficit from batteries 3..1;
 * delta[b] receives each battery's change. */
static void battery_step(const struct sim *sim, struct sim_home *home, int64_t t, int64_t net,
                         int64_t delta[SIM_BATTERIES])
{
    for (int b = 0; b < SIM_BATTERIES; b++)
        delta[b] = 0;
    if (net > 0) {
        for (int b = 0; b < SIM_BATTERIES && net > 0; b++) {
            int64_t take = net < BATTERY_CHARGE_SPEED ? net : BATTERY_CHARGE_SPEED;
            int64_t room = battery_capacity(sim, b, t) - home->battery[b];
            if (take > room)
                take = room;
            if (take <= 0)
                continue;
            home->battery[b] += take;
            delta[b] = take;
            net -= take;
        }
    } else {
        int64_t need = -net;
        for (int b = SIM_BATTERIES - 1; b >= 0 && need > 0; b--) {
            int64_t take = need < battery_output(sim, b, t) ? need : battery_output(sim, b, t);
            if (take > home->battery[b])
                take = home->battery[b];
            if (take <= 0)
                continue;
            home->battery[b] -= take;
            delta[b] = -take;
            need -= take;
        }
    }
}

/* ---- message text ---- */

static void put_prefix(struct sim *sim, struct sim_buf *b, enum reading_kind topic, int32_t home_id,
                       const char *time_text)
{
    PUT_LIT(b, "{");
    if (sim->cfg.homes > 1) {
        PUT_LIT(b, "\"home_id\": ");
        put_i64(b, home_id);
        PUT_LIT(b, ", ");
        if (topic == READING_SOLAR) {
            PUT_LIT(b, "\"panel_id\": ");
            put_i64(b, sim_panel_id(sim->cfg.homes, home_id));
            PUT_LIT(b, ", ");
        }
    }
    PUT_LIT(b, "\"time_stamp\": \"");
    put_str(b, time_text);
    PUT_LIT(b, "\"");
}

/* The reading's time with hour 25: unique per second, and no valid time. */
static const char *bad_time(const char *time_text, char out[SIM_TIME_TEXT_SIZE])
{
    memcpy(out, time_text, SIM_TIME_TEXT_SIZE);
    out[11] = '2';
    out[12] = '5';
    return out;
}

/* The energy field of a message (key includes its leading ", " and ": "), or the fault bad
 * makes of it: a string instead of the number, a negative value (energy negated, or -fallback
 * hundredths when energy is 0), or nothing at all. */
static void put_energy_field(struct sim_buf *b, const char *key, int64_t energy, int bad,
                             const char *wrong_type, int64_t fallback, bool always_fraction)
{
    if (bad == SIM_BAD_MISSING_FIELD)
        return;
    put_str(b, key);
    if (bad == SIM_BAD_WRONG_TYPE)
        put_str(b, wrong_type);
    else if (bad == SIM_BAD_NEGATIVE_ENERGY)
        put_hundredths(b, -(energy > 0 ? energy : fallback), always_fraction);
    else
        put_hundredths(b, energy, always_fraction);
}

/* Home or solar message; bad is -1 for a good one, else the malformed kind to apply. */
static void put_flow_message(struct sim *sim, struct sim_buf *b, enum reading_kind topic,
                             int32_t home_id, const char *time_text, int64_t energy,
                             int64_t accumulated, const int64_t hourly[HOURS_PER_DAY], int bad)
{
    char bad_ts[SIM_TIME_TEXT_SIZE];
    if (bad == SIM_BAD_NOT_OBJECT) {
        PUT_LIT(b, "[");
        put_i64(b, home_id);
        PUT_LIT(b, ", \"");
        put_str(b, time_text);
        PUT_LIT(b, "\", ");
        put_hundredths(b, energy, true);
        PUT_LIT(b, "]");
        return;
    }
    put_prefix(sim, b, topic, home_id,
               bad == SIM_BAD_TIMESTAMP ? bad_time(time_text, bad_ts) : time_text);
    put_energy_field(b, ", \"current_consumption_w\": ", energy, bad, "\"n/a\"", 125, true);
    PUT_LIT(b, ", \"consumption_accumulated_w\": ");
    put_hundredths(b, accumulated, true);
    PUT_LIT(b, ", \"current_consumption_w_accumulated_hourly\": {");
    for (int hour = 0; hour < HOURS_PER_DAY; hour++) {
        static const char *const keys[HOURS_PER_DAY] = {
            "\"0\": ",  "\"1\": ",  "\"2\": ",  "\"3\": ",  "\"4\": ",  "\"5\": ",
            "\"6\": ",  "\"7\": ",  "\"8\": ",  "\"9\": ",  "\"10\": ", "\"11\": ",
            "\"12\": ", "\"13\": ", "\"14\": ", "\"15\": ", "\"16\": ", "\"17\": ",
            "\"18\": ", "\"19\": ", "\"20\": ", "\"21\": ", "\"22\": ", "\"23\": "};
        if (hour > 0)
            PUT_LIT(b, ", ");
        put_str(b, keys[hour]);
        if (hourly[hour] == 0)
            PUT_LIT(b, "0");
        else
            put_hundredths(b, hourly[hour], true);
    }
    PUT_LIT(b, "}}");
}

static void put_battery(const struct sim *sim, struct sim_buf *b, int index, int64_t t,
                        int64_t energy, int64_t delta, int bad)
{
    static const char *const names[SIM_BATTERIES] = {
        "\"battery_1\": ", "\"battery_2\": ", "\"battery_3\": "};
    if (bad == SIM_BAD_BATTERY_KEY)
        PUT_LIT(b, "\"battery_x\": ");
    else
        put_str(b, names[index]);
    PUT_LIT(b, "{\"capacity_kwh\": ");
    put_i64(b, battery_capacity(sim, index, t) / 100000);
    PUT_LIT(b, ", \"max_charge_speed_w\": 1");
    put_energy_field(b, ", \"current_energy_wh\": ", energy, bad, "\"full\"", 1250, false);
    PUT_LIT(b, ", \"is_charging\": ");
    put_bytes(b, delta > 0 ? "1" : "0", 1);
    PUT_LIT(b, ", \"status\": ");
    if (bad == SIM_BAD_UNKNOWN_STATUS)
        PUT_LIT(b, "\"idle\"");
    else if (delta > 0)
        PUT_LIT(b, "\"charging\"");
    else if (delta < 0)
        PUT_LIT(b, "\"discharging\"");
    else
        PUT_LIT(b, "\"ideal\"");
    PUT_LIT(b, ", \"max_output_w\": ");
    put_hundredths(b, battery_output(sim, index, t), false);
    PUT_LIT(b, "}");
}

/* Battery message; a malformed one (bad >= 0) carries only battery `only`. */
static void put_battery_message(struct sim *sim, struct sim_buf *b, int32_t home_id, int64_t t,
                                const char *time_text, const struct sim_home *home,
                                const int64_t delta[SIM_BATTERIES], int bad, int only)
{
    char bad_ts[SIM_TIME_TEXT_SIZE];
    if (bad == SIM_BAD_NOT_OBJECT) {
        PUT_LIT(b, "[");
        put_i64(b, home_id);
        PUT_LIT(b, ", \"");
        put_str(b, time_text);
        PUT_LIT(b, "\", ");
        put_hundredths(b, home->battery[only], false);
        PUT_LIT(b, "]");
        return;
    }
    put_prefix(sim, b, READING_BATTERY, home_id,
               bad == SIM_BAD_TIMESTAMP ? bad_time(time_text, bad_ts) : time_text);
    PUT_LIT(b, ", \"batteries\": {");
    bool first = true;
    for (int i = 0; i < SIM_BATTERIES; i++) {
        if (bad >= 0 && i != only)
            continue;
        if (!first)
            PUT_LIT(b, ", ");
        first = false;
        put_battery(sim, b, i, t, home->battery[i], delta[i], bad);
    }
    PUT_LIT(b, "}}");
}

/* ---- queues ---- */

static struct sim_slot *ready_push(struct sim *sim, const struct sim_message *msg,
                                   const char *payload, size_t len)
{
    /* Callers only push into a drained queue, at most 6 messages at a time. */
    struct sim_slot *slot = &sim->ready[(sim->ready_head + sim->ready_count) % READY_SLOTS];
    slot->buf.len = 0;
    put_bytes(&slot->buf, payload, len);
    if (slot->buf.failed) {
        sim->failed = true;
        return NULL;
    }
    slot->msg = *msg;
    slot->msg.payload = slot->buf.data;
    slot->msg.len = len;
    sim->ready_count++;
    return slot;
}

static bool pending_less(const struct sim_pending *a, const struct sim_pending *b)
{
    return a->release < b->release || (a->release == b->release && a->seq < b->seq);
}

static void pending_push(struct sim *sim, int64_t release, const struct sim_message *msg,
                         const char *payload, size_t len)
{
    if (sim->pending_count == sim->pending_cap) {
        size_t cap = sim->pending_cap ? sim->pending_cap * 2 : 256;
        struct sim_pending *p = realloc(sim->pending, cap * sizeof(*p));
        if (p == NULL) {
            sim->failed = true;
            return;
        }
        sim->pending = p;
        sim->pending_cap = cap;
    }
    char *copy = malloc(len);
    if (copy == NULL) {
        sim->failed = true;
        return;
    }
    memcpy(copy, payload, len);
    struct sim_pending item = {release, sim->pending_seq++, *msg, copy};
    item.msg.payload = copy;
    item.msg.len = len;
    size_t i = sim->pending_count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pending_less(&item, &sim->pending[parent]))
            break;
        sim->pending[i] = sim->pending[parent];
        i = parent;
    }
    sim->pending[i] = item;
}

/* Moves the earliest pending message into the ready queue, stamped with step. */
static void pending_release_top(struct sim *sim, int64_t step)
{
    struct sim_pending top = sim->pending[0];
    struct sim_pending last = sim->pending[--sim->pending_count];
    size_t i = 0, n = sim->pending_count;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && pending_less(&sim->pending[child + 1], &sim->pending[child]))
            child++;
        if (!pending_less(&sim->pending[child], &last))
            break;
        sim->pending[i] = sim->pending[child];
        i = child;
    }
    if (n > 0)
        sim->pending[i] = last;
    top.msg.step = step;
    (void)ready_push(sim, &top.msg, top.payload, top.msg.len);
    free(top.payload);
}

/* Routes a good message: straight out, held back (late / disorder), plus a scheduled copy. */
static void emit_good(struct sim *sim, enum reading_kind topic, int32_t home_id, int64_t t,
                      const struct sim_buf *text)
{
    struct sim_message msg = {.topic = topic,
                              .home_id = home_id,
                              .reading_time = t,
                              .step = sim->step,
                              .flags = 0,
                              .malformed_kind = -1};
    uint64_t k = (uint64_t)topic, h = (uint64_t)home_id, ut = (uint64_t)t;
    int64_t release = sim->step;
    if (chance(sim, sim->cfg.late, CH_LATE, k, h, ut)) {
        msg.flags |= SIM_MSG_LATE;
        release = sim->step + sim->cfg.late_seconds;
    } else if (chance(sim, sim->cfg.disorder, CH_DISORDER, k, h, ut)) {
        msg.flags |= SIM_MSG_REORDERED;
        release = sim->step + 3 + (int64_t)(sim_hash(sim, CH_DISORDER_GAP, k, h, ut) % 58);
    }
    if (release == sim->step)
        (void)ready_push(sim, &msg, text->data, text->len);
    else
        pending_push(sim, release, &msg, text->data, text->len);
    if (chance(sim, sim->cfg.duplicates, CH_DUPLICATE, k, h, ut)) {
        struct sim_message copy = msg;
        copy.flags = SIM_MSG_DUPLICATE;
        int64_t gap = 1 + (int64_t)(sim_hash(sim, CH_DUPLICATE_GAP, k, h, ut) % 5);
        pending_push(sim, release + gap, &copy, text->data, text->len);
    }
}

static int malformed_kinds(enum reading_kind topic)
{
    return topic == READING_BATTERY ? SIM_BAD_KIND_COUNT : SIM_BAD_NOT_OBJECT + 1;
}

/* Generates the three messages of one home for the current step, with their faults. */
static void generate_home_second(struct sim *sim, int32_t home_id)
{
    struct sim_home *home = &sim->homes[home_id - 1];
    int64_t t = sim->cfg.start + sim->step;
    int64_t day = floor_div(t, SECONDS_PER_DAY);
    int hour = (int)((t - day * SECONDS_PER_DAY) / 3600);
    if (home->day != day) {
        home->day = day;
        memset(home->home_hourly, 0, sizeof(home->home_hourly));
        memset(home->solar_hourly, 0, sizeof(home->solar_hourly));
    }
    if (sim->ts_text_time != t) {
        sim_format_time(t, sim->ts_text);
        sim->ts_text_time = t;
    }
    int64_t load = home_load(sim, home, home_id, t);
    int64_t sun = solar_yield(sim, home, home_id, t);
    home->home_acc += load;
    home->home_hourly[hour] += load;
    home->solar_acc += sun;
    home->solar_hourly[hour] += sun;
    int64_t delta[SIM_BATTERIES];
    battery_step(sim, home, t, sun - load, delta);

    for (int k = 0; k < READING_KIND_COUNT; k++) {
        enum reading_kind topic = (enum reading_kind)k;
        struct sim_buf *b = &sim->scratch;
        b->len = 0;
        if (topic == READING_HOME)
            put_flow_message(sim, b, topic, home_id, sim->ts_text, load, home->home_acc,
                             home->home_hourly, -1);
        else if (topic == READING_SOLAR)
            put_flow_message(sim, b, topic, home_id, sim->ts_text, sun, home->solar_acc,
                             home->solar_hourly, -1);
        else
            put_battery_message(sim, b, home_id, t, sim->ts_text, home, delta, -1, 0);
        if (b->failed) {
            sim->failed = true;
            return;
        }
        emit_good(sim, topic, home_id, t, b);

        if (!chance(sim, sim->cfg.malformed, CH_MALFORMED, (uint64_t)k, (uint64_t)home_id,
                    (uint64_t)t))
            continue;
        uint64_t n = sim->malformed_made[k]++;
        int bad = (int)(n % (uint64_t)malformed_kinds(topic));
        struct sim_message msg = {.topic = topic,
                                  .home_id = home_id,
                                  .reading_time = t,
                                  .step = sim->step,
                                  .flags = SIM_MSG_MALFORMED,
                                  .malformed_kind = bad};
        if (bad == SIM_BAD_TRUNCATED) {
            b->len /= 2; /* the good text cut in half: the object never closes */
        } else {
            b->len = 0;
            if (topic == READING_HOME)
                put_flow_message(sim, b, topic, home_id, sim->ts_text, load, home->home_acc,
                                 home->home_hourly, bad);
            else if (topic == READING_SOLAR)
                put_flow_message(sim, b, topic, home_id, sim->ts_text, sun, home->solar_acc,
                                 home->solar_hourly, bad);
            else
                put_battery_message(sim, b, home_id, t, sim->ts_text, home, delta, bad,
                                    (int)(n / SIM_BAD_KIND_COUNT % SIM_BATTERIES));
        }
        if (b->failed) {
            sim->failed = true;
            return;
        }
        (void)ready_push(sim, &msg, b->data, b->len);
    }
}

/* Refills the ready queue; false when the stream is over (or memory ran out). */
static bool sim_fill(struct sim *sim)
{
    while (sim->ready_count == 0 && !sim->failed) {
        if (sim->step_closed) {
            /* release what is due at the end of the step just finished */
            if (sim->pending_count > 0 && sim->pending[0].release <= sim->step - 1) {
                pending_release_top(sim, sim->step - 1);
                continue;
            }
            sim->step_closed = false;
        }
        if (sim->step >= sim->cfg.seconds) {
            if (sim->pending_count == 0)
                return false;
            pending_release_top(sim, sim->cfg.seconds);
            continue;
        }
        generate_home_second(sim, sim->next_home);
        if (++sim->next_home > sim->cfg.homes) {
            sim->next_home = 1;
            sim->step++;
            sim->step_closed = true;
        }
    }
    return !sim->failed;
}

bool sim_next(struct sim *sim, struct sim_message *out)
{
    if (!sim_fill(sim))
        return false;
    struct sim_slot *slot = &sim->ready[sim->ready_head];
    sim->ready_head = (sim->ready_head + 1) % READY_SLOTS;
    sim->ready_count--;
    *out = slot->msg;

    struct sim_stats *st = &sim->stats;
    int k = out->topic;
    st->messages[k]++;
    if (out->flags & SIM_MSG_DUPLICATE)
        st->duplicates[k]++;
    else if (out->flags & SIM_MSG_MALFORMED)
        st->malformed[k]++;
    else
        st->valid[k]++;
    if (out->flags & SIM_MSG_LATE && !(out->flags & SIM_MSG_DUPLICATE))
        st->late[k]++;
    if (out->flags & SIM_MSG_REORDERED && !(out->flags & SIM_MSG_DUPLICATE))
        st->reordered[k]++;
    return true;
}

bool sim_failed(const struct sim *sim)
{
    return sim->failed;
}

const struct sim_stats *sim_stats(const struct sim *sim)
{
    return &sim->stats;
}

static void put_counts(struct sim_buf *b, const char *name, const uint64_t counts[],
                       const char *const topic_names[READING_KIND_COUNT])
{
    PUT_LIT(b, ",\"");
    put_str(b, name);
    PUT_LIT(b, "\":{");
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (k > 0)
            PUT_LIT(b, ",");
        PUT_LIT(b, "\"");
        put_str(b, topic_names[k]);
        PUT_LIT(b, "\":");
        put_i64(b, (int64_t)counts[k]);
    }
    PUT_LIT(b, "}");
}

int sim_summary_json(const struct sim *sim, const char *const topic_names[READING_KIND_COUNT],
                     char *buf, size_t size)
{
    const struct sim_stats *st = &sim->stats;
    struct sim_buf b = {0};
    char start[SIM_TIME_TEXT_SIZE];
    char seed[24];
    snprintf(seed, sizeof(seed), "%llu", (unsigned long long)sim->cfg.seed);
    PUT_LIT(&b, "{\"homes\":");
    put_i64(&b, sim->cfg.homes);
    PUT_LIT(&b, ",\"seconds\":");
    put_i64(&b, sim->cfg.seconds);
    PUT_LIT(&b, ",\"seed\":");
    put_str(&b, seed);
    PUT_LIT(&b, ",\"start\":\"");
    put_str(&b, sim_format_time(sim->cfg.start, start));
    PUT_LIT(&b, "\"");
    put_counts(&b, "messages", st->messages, topic_names);
    put_counts(&b, "valid", st->valid, topic_names);
    put_counts(&b, "duplicates", st->duplicates, topic_names);
    put_counts(&b, "malformed", st->malformed, topic_names);
    put_counts(&b, "late", st->late, topic_names);
    put_counts(&b, "reordered", st->reordered, topic_names);
    uint64_t total = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        total += st->messages[k];
    PUT_LIT(&b, ",\"total\":");
    put_i64(&b, (int64_t)total);
    PUT_LIT(&b, "}");
    int rc = -1;
    if (!b.failed && b.len < size) {
        memcpy(buf, b.data, b.len);
        buf[b.len] = '\0';
        rc = (int)b.len;
    }
    free(b.data);
    return rc;
}

int sim_new(const struct sim_config *config, struct sim **out, char *errstr, size_t errstr_size)
{
    const struct sim_config *c = config;
    const char *bad = NULL;
    if (c->homes < 1 || c->homes > SIM_MAX_HOMES)
        bad = "homes must be in 1..100000";
    else if (c->seconds < 1 || c->seconds > (int64_t)1 << 40)
        bad = "seconds must be in 1..2^40";
    else if (!(c->duplicates >= 0.0 && c->duplicates <= 1.0) ||
             !(c->disorder >= 0.0 && c->disorder <= 1.0) || !(c->late >= 0.0 && c->late <= 1.0) ||
             !(c->malformed >= 0.0 && c->malformed <= 1.0))
        bad = "fault probabilities must be in [0, 1]";
    else if (c->late_seconds < 0 || c->late_seconds > (int64_t)1 << 40)
        bad = "late_seconds must be in 0..2^40";
    else if (c->late > 0.0 && c->late_seconds < 1)
        bad = "late messages need late_seconds >= 1";
    else if (c->appliances != NULL && c->appliance_count == 0)
        bad = "the appliance table is empty";
    else if (c->start < -2208988800LL || c->start > 253402300799LL - c->seconds)
        bad = "the event times must lie within years 1900..9999";
    if (bad != NULL) {
        snprintf(errstr, errstr_size, "sim: %s", bad);
        return -1;
    }
    for (size_t i = 0; c->appliances != NULL && i < c->appliance_count; i++) {
        const struct sim_appliance *a = &c->appliances[i];
        if (a->min_w < 0 || a->max_w < a->min_w || a->max_w > 1000000 || a->range_count < 0 ||
            a->range_count > SIM_MAX_USAGE_RANGES) {
            snprintf(errstr, errstr_size, "sim: appliance \"%s\": bad ratings or ranges",
                     a->name ? a->name : "?");
            return -1;
        }
    }

    struct sim *sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        goto oom;
    sim->cfg = *c;
    sim->seed_hash = mix64(c->seed ^ 0x5d1a3c7e2b9f4086ULL);
    sim->next_home = 1;
    sim->ts_text_time = INT64_MIN;
    sim->homes = calloc((size_t)c->homes, sizeof(*sim->homes));
    if (sim->homes == NULL)
        goto oom;
    for (int32_t h = 1; h <= c->homes; h++) {
        struct sim_home *home = &sim->homes[h - 1];
        home->day = INT64_MIN;
        home->minute = INT64_MIN;
        home->weather_day = INT64_MIN;
        for (int b = 0; b < SIM_BATTERIES; b++) {
            /* 30..90 % of the capacity in effect at the start */
            int64_t cap = battery_capacity(sim, b, c->start);
            uint64_t r = sim_hash(sim, CH_BATTERY_INIT, (uint64_t)h, (uint64_t)b, 0);
            home->battery[b] = cap * 3 / 10 + (int64_t)(r % (uint64_t)(cap * 6 / 10 + 1));
        }
    }
    if (!buf_reserve(&sim->scratch, MESSAGE_RESERVE))
        goto oom;
    *out = sim;
    return 0;
oom:
    sim_destroy(sim);
    snprintf(errstr, errstr_size, "sim: out of memory");
    return -1;
}

void sim_destroy(struct sim *sim)
{
    if (sim == NULL)
        return;
    for (size_t i = 0; i < sim->pending_count; i++)
        free(sim->pending[i].payload);
    free(sim->pending);
    for (size_t i = 0; i < READY_SLOTS; i++)
        free(sim->ready[i].buf.data);
    free(sim->scratch.data);
    free(sim->homes);
    free(sim);
}
