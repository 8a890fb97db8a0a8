/* Names of reading kinds, their topics and battery states, as the producers and the schema spell
 * them. */
#include "solarx/reading.h"

#include <string.h>

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

int reading_kind_of_topic(char *const topics[READING_KIND_COUNT], const char *topic)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (strcmp(topics[k], topic) == 0)
            return k;
    return -1;
}
