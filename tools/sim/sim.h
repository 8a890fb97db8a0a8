/* Deterministic Solar-X telemetry generator behind tools/solarx-sim: homes, panels and batteries
 * second by second, with optional faults (duplicates, disorder, late and malformed messages). */
#ifndef SOLARX_SIM_H
#define SOLARX_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/reading.h"

/* Event times are seconds since the epoch of the naive local timestamp read as if it were UTC:
 * the generator never applies a zone, the text it prints is exactly the local wall clock. */

/* Largest number of homes a generator accepts. */
#define SIM_MAX_HOMES 100000
/* Batteries per home: battery_1 .. battery_3. */
#define SIM_BATTERIES 3
/* Size of a buffer for sim_format_time: "YYYY-MM-DD HH:MM:SS" and a NUL. */
#define SIM_TIME_TEXT_SIZE 20

/* One appliance of the home-load model: a rating range in W and the minutes of the day
 * ([start, end) ranges, 0..1440) during which it is on. */
#define SIM_MAX_USAGE_RANGES 8
struct sim_appliance {
    const char *name; /* borrowed; must outlive the generator */
    int32_t min_w;
    int32_t max_w;
    int32_t range_count;
    int16_t range_start[SIM_MAX_USAGE_RANGES]; /* minute of the day, inclusive */
    int16_t range_end[SIM_MAX_USAGE_RANGES];   /* minute of the day, exclusive, <= 1440 */
};

struct sim_config {
    uint64_t seed;
    int32_t homes;   /* 1..SIM_MAX_HOMES; > 1 adds "home_id" (and "panel_id") to every message */
    int64_t start;   /* event time of the first second (see above) */
    int64_t seconds; /* number of seconds generated, >= 1 */

    /* Fault probabilities per message, each in [0, 1]. */
    double duplicates;    /* an exact byte copy follows 1..5 positions later */
    double disorder;      /* the message is delayed by 3..60 positions of its topic and home */
    double late;          /* the message is held back late_seconds of event time, or to the end */
    double malformed;     /* a broken message is emitted in addition to the good one */
    int64_t late_seconds; /* >= 1 when late > 0 */

    /* From this event time on, battery_1 of every home reports capacity_kwh 15 and
     * max_output_w 5 instead of 12 / 3.33. INT64_MAX: never. */
    int64_t battery_upgrade;

    /* Appliance table of the home-load model; NULL uses the built-in copy of
     * config/home_appliances_consumption.json. Borrowed; must outlive the generator. */
    const struct sim_appliance *appliances;
    size_t appliance_count;
};

/* Flags of an emitted message. */
#define SIM_MSG_DUPLICATE 0x1u /* exact byte copy of a message emitted earlier */
#define SIM_MSG_MALFORMED 0x2u /* broken on purpose; no valid reading in it */
#define SIM_MSG_LATE 0x4u /* valid, emitted late_seconds after its own second (or at the end) */
#define SIM_MSG_REORDERED 0x8u /* valid, delayed by a few positions of its topic and home */

/* Kinds of malformed messages, rotated per topic. Home and solar messages use the first six
 * kinds; battery messages all eight. Every malformed battery message names one battery only,
 * so no valid reading hides in it. */
enum sim_malformed_kind {
    SIM_BAD_TRUNCATED = 0,   /* the good message cut in half: not JSON */
    SIM_BAD_WRONG_TYPE,      /* an energy given as a non-numeric string */
    SIM_BAD_NEGATIVE_ENERGY, /* current_consumption_w / current_energy_wh below zero */
    SIM_BAD_TIMESTAMP,       /* the reading's time_stamp with hour 25 */
    SIM_BAD_MISSING_FIELD,   /* current_consumption_w / current_energy_wh absent */
    SIM_BAD_NOT_OBJECT,      /* a JSON array [home_id, time_stamp, energy] instead of an object */
    SIM_BAD_UNKNOWN_STATUS,  /* battery status outside ideal/charging/discharging */
    SIM_BAD_BATTERY_KEY,     /* battery key that is not battery_<N> */
};
#define SIM_BAD_KIND_COUNT 8

/* One message as the generator hands it out. */
struct sim_message {
    enum reading_kind topic;
    int32_t home_id;      /* 1..homes; also the message key */
    int64_t reading_time; /* event time of the reading inside (for malformed: of its good twin) */
    int64_t step;         /* 0..seconds: the stream second at which it is emitted (for pacing) */
    unsigned flags;       /* SIM_MSG_* */
    int malformed_kind;   /* enum sim_malformed_kind when SIM_MSG_MALFORMED, else -1 */
    const char *payload;  /* owned by the generator; valid until the next sim_next or destroy */
    size_t len;           /* bytes of payload, no trailing newline, not NUL-counted */
};

/* What has been handed out so far, per topic (indexed by enum reading_kind). */
struct sim_stats {
    uint64_t messages[READING_KIND_COUNT];   /* everything emitted */
    uint64_t valid[READING_KIND_COUNT];      /* distinct good messages (no copies, no broken) */
    uint64_t duplicates[READING_KIND_COUNT]; /* byte copies */
    uint64_t malformed[READING_KIND_COUNT];
    uint64_t late[READING_KIND_COUNT];      /* subset of valid */
    uint64_t reordered[READING_KIND_COUNT]; /* subset of valid */
};

struct sim;

/* Creates a generator for config (copied; the appliance table stays borrowed). Returns 0 and
 * sets *out, or -1 with a reason in errstr (bad config or out of memory). Release with
 * sim_destroy. */
int sim_new(const struct sim_config *config, struct sim **out, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Hands out the next message in stream order. Returns true and fills *out (payload owned by the
 * generator, valid until the next call), or false once every message has been emitted.
 * Returns false also if memory runs out; sim_failed then tells. */
bool sim_next(struct sim *sim, struct sim_message *out) __attribute__((warn_unused_result));

/* True if generation stopped because memory ran out. */
bool sim_failed(const struct sim *sim);

/* Counters of the messages handed out so far; owned by the generator. */
const struct sim_stats *sim_stats(const struct sim *sim);

/* Writes the one-line JSON summary (no newline) into buf, keyed by the given topic names
 * (indexed by enum reading_kind). Returns its length, or -1 if size is too small. */
int sim_summary_json(const struct sim *sim, const char *const topic_names[READING_KIND_COUNT],
                     char *buf, size_t size) __attribute__((warn_unused_result));

/* Frees the generator and every message it still holds; NULL is a no-op. */
void sim_destroy(struct sim *sim);

/* Parses "YYYY-MM-DD HH:MM:SS" (exactly, range-checked, no zone) into event time. Returns 0,
 * or -1 on anything else. */
int sim_parse_time(const char *text, int64_t *out) __attribute__((warn_unused_result));

/* Writes event time as "YYYY-MM-DD HH:MM:SS" into buf (SIM_TIME_TEXT_SIZE bytes). Returns buf. */
char *sim_format_time(int64_t t, char buf[SIM_TIME_TEXT_SIZE]);

/* Parses an appliance's usage time ("7:00-7:15,12:00-12:15", "0:00-24:00") into its ranges.
 * Returns 0, or -1 on syntax errors, empty or reversed ranges, or more than
 * SIM_MAX_USAGE_RANGES ranges. */
int sim_parse_usage_time(const char *text, struct sim_appliance *appliance)
    __attribute__((warn_unused_result));

/* The built-in appliance table (a copy of config/home_appliances_consumption.json); sets *count. */
const struct sim_appliance *sim_default_appliances(size_t *count);

/* Panel id of a home's panel in the stream: 4 (the service's default) for a single home,
 * home_id * 10 + 4 when there are several homes. */
int32_t sim_panel_id(int32_t homes, int32_t home_id);

#endif
