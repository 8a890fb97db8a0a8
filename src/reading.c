/* Names of reading kinds and battery states, as the producers and the schema spell them. */
#include "solarx/reading.h"

const char *reading_status_name(enum battery_status status)
{
    switch (status) {
    case BATTERY_IDLE:
        return "ideal";
    case BATTERY_CHARGING:
        return "charging";
    case BATTERY_DISCHARGING:
        return "discharging";
    }
    return "unknown";
}

const char *reading_kind_name(enum reading_kind kind)
{
    switch (kind) {
    case READING_HOME:
        return "home";
    case READING_SOLAR:
        return "solar";
    case READING_BATTERY:
        return "battery";
    }
    return "unknown";
}
