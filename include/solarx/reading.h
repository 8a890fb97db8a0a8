/* A typed reading: what one device reported for one second of event time. */
#ifndef SOLARX_READING_H
#define SOLARX_READING_H

#include <stdint.h>

#include "solarx/fixed.h"

/* The three Solar-X topics, and so the three kinds of device. */
enum reading_kind {
    READING_HOME = 0,    /* home_energy_consumption: one home's consumption */
    READING_SOLAR = 1,   /* solar_energy_data: one panel's generation */
    READING_BATTERY = 2, /* battery_data: one battery of a home */
};
#define READING_KIND_COUNT 3

/* The producers' status words; "ideal" is their spelling of idle. */
enum battery_status {
    BATTERY_IDLE = 0, /* "ideal" */
    BATTERY_CHARGING = 1,
    BATTERY_DISCHARGING = 2,
};

struct reading {
    enum reading_kind kind;
    int32_t home_id;   /* the site; for solar, the home the panel belongs to */
    int32_t device_id; /* home: the home_id; solar: panel_id; battery: the N of battery_N */
    int64_t ts;        /* event time, seconds since the epoch (UTC) */

    /* home: Wh consumed in this second; solar: Wh generated in this second;
     * battery: current_energy_wh (state, not a flow). */
    fixed_t energy_wh;
    /* home / solar: consumption_accumulated_w as sent (a running total in Wh). */
    fixed_t accumulated_wh;

    /* battery only */
    fixed_t capacity_kwh;
    fixed_t max_charge_speed_w;
    fixed_t max_output_w;
    uint8_t is_charging; /* 0 or 1 */
    uint8_t status;      /* enum battery_status */
};

/* The producers' word for a status ("ideal", "charging", "discharging"). */
const char *reading_status_name(enum battery_status status);

/* Short name of a kind: "home", "solar", "battery". */
const char *reading_kind_name(enum reading_kind kind);

/* The kind whose topic is named topic, topics being the configured names by kind ([topics],
 * config.topic); -1 when topic is none of them. Pure. */
int reading_kind_of_topic(char *const topics[READING_KIND_COUNT], const char *topic);

#endif
