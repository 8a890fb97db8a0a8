/* The statement table (statements.h): every statement of the flush transaction, once. */
#include "solarx/statements.h"

/* Advisory lock of the registry dimensions: pg_advisory_xact_lock[_shared](LOCK, 0). */
#define REGISTRY_LOCK_CLASS "735810"
/* dim_battery histories are serialised per home: (BATTERY_LOCK_CLASS, home_id). */
#define BATTERY_LOCK_CLASS "735811"

#define NAMES(n) (const char *const[n])

static const char *const window_key_params[P_WINDOW_KEYS_COUNT] = {
    [P_WINDOW_KEYS_HOME_IDS] = "home_ids",
    [P_WINDOW_KEYS_DEVICE_IDS] = "device_ids",
    [P_WINDOW_KEYS_STARTS] = "starts",
};

static const char *const stored_window_columns[C_STORED_COUNT] = {
    [C_STORED_HOME_ID] = "home_id",
    [C_STORED_DEVICE_ID] = "device_id",
    [C_STORED_START] = "start",
    [C_STORED_SUM_WH] = "sum_wh",
    [C_STORED_READINGS_COUNT] = "readings_count",
    [C_STORED_MIN_WH] = "min_wh",
    [C_STORED_MAX_WH] = "max_wh",
    [C_STORED_FIRST_TS] = "first_ts",
    [C_STORED_LAST_TS] = "last_ts",
    [C_STORED_LAST_ENERGY_WH] = "last_energy_wh",
    [C_STORED_LAST_ACCUMULATED_WH] = "last_accumulated_wh",
    [C_STORED_CAPACITY_KWH] = "capacity_kwh",
    [C_STORED_MAX_CHARGE_SPEED_W] = "max_charge_speed_w",
    [C_STORED_MAX_OUTPUT_W] = "max_output_w",
    [C_STORED_IS_CHARGING] = "is_charging",
    [C_STORED_STATUS] = "status",
    [C_STORED_SECONDS_SEEN] = "seconds_seen",
    [C_STORED_WINDOW_SECONDS] = "window_seconds",
    [C_STORED_VERSION] = "version",
};

/* The end of every fact upsert (after its DO UPDATE SET list). A fact row's version names one
 * incarnation of the row and counts its updates: a new row starts at the writer's new-row
 * version (a fresh multiple of 65536, FACT_VERSION_STRIDE in flush.c), each update adds one. The
 * writer passes the version it read or cached, v (0: it believes the row absent); a row is
 * written only when it still carries v, or is absent and v is 0. `written` counts the rows
 * written so; a row changed by another writer (or inserted by one after v = 0 was read), or
 * deleted after v > 0 was read (inserted here with v + 1, not the new-row version), is missing
 * from the count: the writer's state of it is stale. A deleted and re-inserted row never carries
 * its old version again: no stale state is written over it. */
#define VERSION_CHECK(new_row_version)                                                             \
    " version = f.version + 1"                                                                     \
    " WHERE f.version = EXCLUDED.version - 1 AND EXCLUDED.version <> " new_row_version "::bigint"  \
    " RETURNING xmax = 0 AS inserted, version)"                                                    \
    " SELECT count(*) FILTER (WHERE NOT inserted OR version = " new_row_version "::bigint)"        \
    " FROM written"

static const char *const facts_written_columns[C_FACTS_COUNT] = {
    [C_FACTS_WRITTEN] = "written",
};

static const char *const delete_versions_params[P_DELETE_VERSIONS_COUNT] = {
    [P_DELETE_VERSIONS_DEVICE_IDS] = "device_ids",
    [P_DELETE_VERSIONS_KEPT_KEYS] = "kept_keys",
};

static const char *const repoint_params[P_REPOINT_COUNT] = {
    [P_REPOINT_DEVICE_IDS] = "device_ids",
};

static const struct stmt_def statements[STMT_COUNT] = {
    [STMT_BEGIN] = {.name = "begin", .sql = "BEGIN"},
    [STMT_COMMIT] = {.name = "commit", .sql = "COMMIT"},
    [STMT_SAVEPOINT_RAW] = {.name = "savepoint_raw", .sql = "SAVEPOINT raw_rows"},
    [STMT_ROLLBACK_TO_RAW] = {.name = "rollback_to_raw", .sql = "ROLLBACK TO SAVEPOINT raw_rows"},
    /* The flush waits for its raw lanes before it commits, a wait PostgreSQL's deadlock
     * detector cannot see: a lane that waited on a lock held by a transaction waiting on this
     * flush's locks would never return. It gives up instead (55P03: the flush is retried). */
    [STMT_RAW_LANE_LOCK_TIMEOUT] = {.name = "raw_lane_lock_timeout",
                                    .sql = "SET LOCAL lock_timeout = '10s'"},

    [STMT_LOCK_WINDOWS] =
        {
            .name = "lock_windows",
            .sql = "SELECT count(pg_advisory_xact_lock(c, o))"
                   " FROM unnest($1::int[], $2::int[]) AS u(c, o)",
            .nparams = P_LOCK_WINDOWS_COUNT,
            .param_names =
                NAMES(P_LOCK_WINDOWS_COUNT){
                    [P_LOCK_WINDOWS_CLASSES] = "classes", [P_LOCK_WINDOWS_OBJECTS] = "objects"},
        },
    [STMT_STORED_HOME_WINDOWS] =
        {
            .name = "stored_home_windows",
            .sql =
                "SELECT f.home_id, f.home_id, extract(epoch FROM f.date_key)::bigint,"
                " f.consumption_wh, f.readings_count, f.min_consumption_wh,"
                " f.max_consumption_wh, extract(epoch FROM f.first_ts)::bigint,"
                " extract(epoch FROM f.last_ts)::bigint, 0, f.last_accumulated_wh, 0, 0, 0,"
                " false, 'ideal', f.seconds_seen, f.window_seconds, f.version"
                " FROM unnest($1::int[], $2::int[], $3::bigint[]) AS k(home_id, device_id, start)"
                " JOIN solarx_wh.fact_home_power_readings f"
                "   ON f.home_id = k.home_id AND f.date_key = to_timestamp(k.start)",
            .nparams = P_WINDOW_KEYS_COUNT,
            .param_names = window_key_params,
            .ncolumns = C_STORED_COUNT,
            .column_names = stored_window_columns,
        },
    [STMT_STORED_SOLAR_WINDOWS] =
        {
            .name = "stored_solar_windows",
            .sql =
                "SELECT f.home_id, f.solar_panel_id, extract(epoch FROM f.date_key)::bigint,"
                " f.generation_power_wh, f.readings_count, f.min_generation_wh,"
                " f.max_generation_wh, extract(epoch FROM f.first_ts)::bigint,"
                " extract(epoch FROM f.last_ts)::bigint, 0, f.last_accumulated_wh, 0, 0, 0,"
                " false, 'ideal', f.seconds_seen, f.window_seconds, f.version"
                " FROM unnest($1::int[], $2::int[], $3::bigint[]) AS k(home_id, device_id, start)"
                " JOIN solarx_wh.fact_solar_panel_power_readings f"
                "   ON f.solar_panel_id = k.device_id AND f.date_key = to_timestamp(k.start)",
            .nparams = P_WINDOW_KEYS_COUNT,
            .param_names = window_key_params,
            .ncolumns = C_STORED_COUNT,
            .column_names = stored_window_columns,
        },
    [STMT_STORED_BATTERY_WINDOWS] =
        {
            .name = "stored_battery_windows",
            .sql =
                "SELECT f.home_id, f.battery_id, extract(epoch FROM f.date_key)::bigint, 0,"
                " f.readings_count, f.min_energy_wh, f.max_energy_wh,"
                " extract(epoch FROM f.first_ts)::bigint, extract(epoch FROM f.last_ts)::bigint,"
                " f.current_energy_wh, 0, f.capacity_kwh, f.max_charge_speed_w, f.max_output_w,"
                " f.is_charging, f.status, f.seconds_seen, f.window_seconds, f.version"
                " FROM unnest($1::int[], $2::int[], $3::bigint[]) AS k(home_id, device_id, start)"
                " JOIN solarx_wh.fact_battery_power_readings f"
                "   ON f.home_id = k.home_id AND f.battery_id = k.device_id"
                "  AND f.date_key = to_timestamp(k.start)",
            .nparams = P_WINDOW_KEYS_COUNT,
            .param_names = window_key_params,
            .ncolumns = C_STORED_COUNT,
            .column_names = stored_window_columns,
        },

    [STMT_UPSERT_HOME_FACTS] =
        {
            .name = "upsert_home_facts",
            .sql =
                "WITH written AS ("
                "INSERT INTO solarx_wh.fact_home_power_readings AS f"
                " (home_id, date_key, consumption_wh, readings_count, min_consumption_wh,"
                "  max_consumption_wh, last_accumulated_wh, first_ts, last_ts, window_seconds,"
                "  seconds_seen, home_key, version)"
                " SELECT h, to_timestamp(s), sm, c, mn, mx, la, to_timestamp(ft), to_timestamp(lt),"
                "        $10::int, seen, k, CASE WHEN v = 0 THEN $14::bigint ELSE v + 1 END"
                " FROM unnest($1::int[], $2::bigint[], $3::numeric[], $4::int[], $5::numeric[],"
                "             $6::numeric[], $7::numeric[], $8::bigint[], $9::bigint[], "
                "$11::bytea[],"
                "             $12::bigint[], $13::bigint[]) AS u(h, s, sm, c, mn, mx, la, ft, lt, "
                "seen, k, v)"
                " ON CONFLICT (home_id, date_key) DO UPDATE SET home_key = EXCLUDED.home_key,"
                "  consumption_wh = EXCLUDED.consumption_wh, readings_count = "
                "EXCLUDED.readings_count,"
                "  min_consumption_wh = EXCLUDED.min_consumption_wh,"
                "  max_consumption_wh = EXCLUDED.max_consumption_wh,"
                "  last_accumulated_wh = EXCLUDED.last_accumulated_wh, first_ts = "
                "EXCLUDED.first_ts,"
                "  last_ts = EXCLUDED.last_ts, window_seconds = EXCLUDED.window_seconds,"
                "  seconds_seen = EXCLUDED.seconds_seen, updated_at = now()," VERSION_CHECK("$14"),
            .nparams = P_HOME_FACT_COUNT,
            .param_names =
                NAMES(P_HOME_FACT_COUNT){
                    [P_HOME_FACT_HOME_IDS] = "home_ids",
                    [P_HOME_FACT_STARTS] = "starts",
                    [P_HOME_FACT_SUMS_WH] = "sums_wh",
                    [P_HOME_FACT_READINGS_COUNTS] = "readings_counts",
                    [P_HOME_FACT_MINS_WH] = "mins_wh",
                    [P_HOME_FACT_MAXS_WH] = "maxs_wh",
                    [P_HOME_FACT_LAST_ACCUMULATED_WH] = "last_accumulated_wh",
                    [P_HOME_FACT_FIRST_TS] = "first_ts",
                    [P_HOME_FACT_LAST_TS] = "last_ts",
                    [P_HOME_FACT_WINDOW_SECONDS] = "window_seconds",
                    [P_HOME_FACT_SECONDS_SEEN] = "seconds_seen",
                    [P_HOME_FACT_HOME_KEYS] = "home_keys",
                    [P_HOME_FACT_VERSIONS] = "versions",
                    [P_HOME_FACT_NEW_ROW_VERSION] = "new_row_version",
                },
            .ncolumns = C_FACTS_COUNT,
            .column_names = facts_written_columns,
        },
    [STMT_UPSERT_SOLAR_FACTS] =
        {
            .name = "upsert_solar_facts",
            .sql =
                "WITH written AS ("
                "INSERT INTO solarx_wh.fact_solar_panel_power_readings AS f"
                " (solar_panel_id, date_key, home_id, generation_power_wh, readings_count,"
                "  min_generation_wh, max_generation_wh, last_accumulated_wh, first_ts, last_ts,"
                "  window_seconds, seconds_seen, solar_panel_key, version)"
                " SELECT d, to_timestamp(s), h, sm, c, mn, mx, la, to_timestamp(ft), "
                "to_timestamp(lt),"
                "        $11::int, seen, k, CASE WHEN v = 0 THEN $15::bigint ELSE v + 1 END"
                " FROM unnest($1::int[], $2::bigint[], $3::int[], $4::numeric[], $5::int[],"
                "             $6::numeric[], $7::numeric[], $8::numeric[], $9::bigint[], "
                "$10::bigint[],"
                "             $12::bytea[], $13::bigint[], $14::bigint[])"
                " AS u(d, s, h, sm, c, mn, mx, la, ft, lt, seen, k, v)"
                " ON CONFLICT (solar_panel_id, date_key) DO UPDATE SET home_id = EXCLUDED.home_id,"
                "  solar_panel_key = EXCLUDED.solar_panel_key,"
                "  generation_power_wh = EXCLUDED.generation_power_wh,"
                "  readings_count = EXCLUDED.readings_count,"
                "  min_generation_wh = EXCLUDED.min_generation_wh,"
                "  max_generation_wh = EXCLUDED.max_generation_wh,"
                "  last_accumulated_wh = EXCLUDED.last_accumulated_wh, first_ts = "
                "EXCLUDED.first_ts,"
                "  last_ts = EXCLUDED.last_ts, window_seconds = EXCLUDED.window_seconds,"
                "  seconds_seen = EXCLUDED.seconds_seen, updated_at = now()," VERSION_CHECK("$15"),
            .nparams = P_SOLAR_FACT_COUNT,
            .param_names =
                NAMES(P_SOLAR_FACT_COUNT){
                    [P_SOLAR_FACT_PANEL_IDS] = "panel_ids",
                    [P_SOLAR_FACT_STARTS] = "starts",
                    [P_SOLAR_FACT_HOME_IDS] = "home_ids",
                    [P_SOLAR_FACT_SUMS_WH] = "sums_wh",
                    [P_SOLAR_FACT_READINGS_COUNTS] = "readings_counts",
                    [P_SOLAR_FACT_MINS_WH] = "mins_wh",
                    [P_SOLAR_FACT_MAXS_WH] = "maxs_wh",
                    [P_SOLAR_FACT_LAST_ACCUMULATED_WH] = "last_accumulated_wh",
                    [P_SOLAR_FACT_FIRST_TS] = "first_ts",
                    [P_SOLAR_FACT_LAST_TS] = "last_ts",
                    [P_SOLAR_FACT_WINDOW_SECONDS] = "window_seconds",
                    [P_SOLAR_FACT_SECONDS_SEEN] = "seconds_seen",
                    [P_SOLAR_FACT_PANEL_KEYS] = "panel_keys",
                    [P_SOLAR_FACT_VERSIONS] = "versions",
                    [P_SOLAR_FACT_NEW_ROW_VERSION] = "new_row_version",
                },
            .ncolumns = C_FACTS_COUNT,
            .column_names = facts_written_columns,
        },
    [STMT_UPSERT_BATTERY_FACTS] =
        {
            .name = "upsert_battery_facts",
            .sql =
                "WITH written AS ("
                "INSERT INTO solarx_wh.fact_battery_power_readings AS f"
                " (home_id, battery_id, date_key, current_energy_wh, is_charging, status, "
                "capacity_kwh,"
                "  max_charge_speed_w, max_output_w, min_energy_wh, max_energy_wh, readings_count,"
                "  first_ts, last_ts, window_seconds, seconds_seen, battery_key, version)"
                " SELECT h, d, to_timestamp(s), e, ch, st, c, sp, mo, mn, mx, n, to_timestamp(ft),"
                "        to_timestamp(lt), $15::int, seen, k, CASE WHEN v = 0 THEN $19::bigint "
                "ELSE v + 1 END"
                " FROM unnest($1::int[], $2::int[], $3::bigint[], $4::numeric[], $5::bool[],"
                "             $6::text[], $7::numeric[], $8::numeric[], $9::numeric[], "
                "$10::numeric[],"
                "             $11::numeric[], $12::int[], $13::bigint[], $14::bigint[], "
                "$16::bytea[],"
                "             $17::bigint[], $18::bigint[])"
                " AS u(h, d, s, e, ch, st, c, sp, mo, mn, mx, n, ft, lt, seen, k, v)"
                " ON CONFLICT (home_id, battery_id, date_key) DO UPDATE SET battery_key = "
                "EXCLUDED.battery_key,"
                "  current_energy_wh = EXCLUDED.current_energy_wh, is_charging = "
                "EXCLUDED.is_charging,"
                "  status = EXCLUDED.status, capacity_kwh = EXCLUDED.capacity_kwh,"
                "  max_charge_speed_w = EXCLUDED.max_charge_speed_w,"
                "  max_output_w = EXCLUDED.max_output_w, min_energy_wh = EXCLUDED.min_energy_wh,"
                "  max_energy_wh = EXCLUDED.max_energy_wh, readings_count = "
                "EXCLUDED.readings_count,"
                "  first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts,"
                "  window_seconds = EXCLUDED.window_seconds, seconds_seen = EXCLUDED.seconds_seen,"
                "  updated_at = now()," VERSION_CHECK("$19"),
            .nparams = P_BATTERY_FACT_COUNT,
            .param_names =
                NAMES(P_BATTERY_FACT_COUNT){
                    [P_BATTERY_FACT_HOME_IDS] = "home_ids",
                    [P_BATTERY_FACT_BATTERY_IDS] = "battery_ids",
                    [P_BATTERY_FACT_STARTS] = "starts",
                    [P_BATTERY_FACT_ENERGIES_WH] = "energies_wh",
                    [P_BATTERY_FACT_IS_CHARGING] = "is_charging",
                    [P_BATTERY_FACT_STATUSES] = "statuses",
                    [P_BATTERY_FACT_CAPACITIES_KWH] = "capacities_kwh",
                    [P_BATTERY_FACT_MAX_CHARGE_SPEEDS_W] = "max_charge_speeds_w",
                    [P_BATTERY_FACT_MAX_OUTPUTS_W] = "max_outputs_w",
                    [P_BATTERY_FACT_MINS_WH] = "mins_wh",
                    [P_BATTERY_FACT_MAXS_WH] = "maxs_wh",
                    [P_BATTERY_FACT_READINGS_COUNTS] = "readings_counts",
                    [P_BATTERY_FACT_FIRST_TS] = "first_ts",
                    [P_BATTERY_FACT_LAST_TS] = "last_ts",
                    [P_BATTERY_FACT_WINDOW_SECONDS] = "window_seconds",
                    [P_BATTERY_FACT_SECONDS_SEEN] = "seconds_seen",
                    [P_BATTERY_FACT_BATTERY_KEYS] = "battery_keys",
                    [P_BATTERY_FACT_VERSIONS] = "versions",
                    [P_BATTERY_FACT_NEW_ROW_VERSION] = "new_row_version",
                },
            .ncolumns = C_FACTS_COUNT,
            .column_names = facts_written_columns,
        },

    [STMT_COPY_HOME_RAW] =
        {
            .name = "copy_home_raw",
            .sql = "COPY solarx_raw.home_power_readings"
                   " (home_id, ts, consumption_wh, accumulated_wh, src_partition, src_offset)"
                   " FROM STDIN (FORMAT binary)",
        },
    [STMT_COPY_SOLAR_RAW] =
        {
            .name = "copy_solar_raw",
            .sql = "COPY solarx_raw.solar_panel_readings"
                   " (panel_id, ts, home_id, generation_wh, accumulated_wh, src_partition,"
                   "  src_offset) FROM STDIN (FORMAT binary)",
        },
    [STMT_COPY_BATTERY_RAW] =
        {
            .name = "copy_battery_raw",
            .sql = "COPY solarx_raw.battery_readings"
                   " (home_id, battery_id, ts, battery_name, capacity_kwh, max_charge_speed_w,"
                   "  current_energy_wh, is_charging, status, max_output_w, src_partition,"
                   "  src_offset) FROM STDIN (FORMAT binary)",
        },
    [STMT_INSERT_HOME_RAW] =
        {
            .name = "insert_home_raw",
            .sql = "INSERT INTO solarx_raw.home_power_readings"
                   " (home_id, ts, consumption_wh, accumulated_wh, src_partition, src_offset)"
                   " SELECT h, to_timestamp(t), e, a, p, o"
                   " FROM unnest($1::int[], $2::bigint[], $3::numeric[], $4::numeric[], $5::int[],"
                   "             $6::bigint[]) AS u(h, t, e, a, p, o)"
                   " ON CONFLICT DO NOTHING",
            .nparams = P_HOME_RAW_COUNT,
            .param_names =
                NAMES(P_HOME_RAW_COUNT){
                    [P_HOME_RAW_HOME_IDS] = "home_ids",
                    [P_HOME_RAW_TS] = "ts",
                    [P_HOME_RAW_CONSUMPTIONS_WH] = "consumptions_wh",
                    [P_HOME_RAW_ACCUMULATED_WH] = "accumulated_wh",
                    [P_HOME_RAW_PARTITIONS] = "partitions",
                    [P_HOME_RAW_OFFSETS] = "offsets",
                },
        },
    [STMT_INSERT_SOLAR_RAW] =
        {
            .name = "insert_solar_raw",
            .sql =
                "INSERT INTO solarx_raw.solar_panel_readings"
                " (panel_id, ts, home_id, generation_wh, accumulated_wh, src_partition, src_offset)"
                " SELECT d, to_timestamp(t), h, e, a, p, o"
                " FROM unnest($1::int[], $2::bigint[], $3::int[], $4::numeric[], $5::numeric[],"
                "             $6::int[], $7::bigint[]) AS u(d, t, h, e, a, p, o)"
                " ON CONFLICT DO NOTHING",
            .nparams = P_SOLAR_RAW_COUNT,
            .param_names =
                NAMES(P_SOLAR_RAW_COUNT){
                    [P_SOLAR_RAW_PANEL_IDS] = "panel_ids",
                    [P_SOLAR_RAW_TS] = "ts",
                    [P_SOLAR_RAW_HOME_IDS] = "home_ids",
                    [P_SOLAR_RAW_GENERATIONS_WH] = "generations_wh",
                    [P_SOLAR_RAW_ACCUMULATED_WH] = "accumulated_wh",
                    [P_SOLAR_RAW_PARTITIONS] = "partitions",
                    [P_SOLAR_RAW_OFFSETS] = "offsets",
                },
        },
    [STMT_INSERT_BATTERY_RAW] =
        {
            .name = "insert_battery_raw",
            .sql =
                "INSERT INTO solarx_raw.battery_readings"
                " (home_id, battery_id, ts, battery_name, capacity_kwh, max_charge_speed_w,"
                "  current_energy_wh, is_charging, status, max_output_w, src_partition, src_offset)"
                " SELECT h, d, to_timestamp(t), 'battery_' || d, c, s, e, ch, st, mo, p, o"
                " FROM unnest($1::int[], $2::int[], $3::bigint[], $4::numeric[], $5::numeric[],"
                "             $6::numeric[], $7::bool[], $8::text[], $9::numeric[], $10::int[],"
                "             $11::bigint[]) AS u(h, d, t, c, s, e, ch, st, mo, p, o)"
                " ON CONFLICT DO NOTHING",
            .nparams = P_BATTERY_RAW_COUNT,
            .param_names =
                NAMES(P_BATTERY_RAW_COUNT){
                    [P_BATTERY_RAW_HOME_IDS] = "home_ids",
                    [P_BATTERY_RAW_BATTERY_IDS] = "battery_ids",
                    [P_BATTERY_RAW_TS] = "ts",
                    [P_BATTERY_RAW_CAPACITIES_KWH] = "capacities_kwh",
                    [P_BATTERY_RAW_MAX_CHARGE_SPEEDS_W] = "max_charge_speeds_w",
                    [P_BATTERY_RAW_ENERGIES_WH] = "energies_wh",
                    [P_BATTERY_RAW_IS_CHARGING] = "is_charging",
                    [P_BATTERY_RAW_STATUSES] = "statuses",
                    [P_BATTERY_RAW_MAX_OUTPUTS_W] = "max_outputs_w",
                    [P_BATTERY_RAW_PARTITIONS] = "partitions",
                    [P_BATTERY_RAW_OFFSETS] = "offsets",
                },
        },

    [STMT_DROP_RAW_PARTITIONS] =
        {
            .name = "drop_raw_partitions",
            .sql = "SELECT solarx_raw.drop_partitions_before(to_timestamp($1::bigint))",
            .nparams = P_DROP_PARTITIONS_COUNT,
            .param_names = NAMES(P_DROP_PARTITIONS_COUNT){[P_DROP_PARTITIONS_HORIZON] = "horizon"},
            .ncolumns = C_DROP_PARTITIONS_COUNT,
            .column_names = NAMES(C_DROP_PARTITIONS_COUNT){[C_DROP_PARTITIONS_DROPPED] = "dropped"},
        },
    [STMT_ENSURE_RAW_PARTITIONS] =
        {
            .name = "ensure_raw_partitions",
            .sql = "SELECT solarx_raw.ensure_partitions_for_days(ARRAY("
                   "SELECT date '1970-01-01' + d FROM unnest($1::int[]) AS d))",
            .nparams = P_ENSURE_PARTITIONS_COUNT,
            .param_names = NAMES(P_ENSURE_PARTITIONS_COUNT){[P_ENSURE_PARTITIONS_DAYS] = "days"},
            .ncolumns = C_ENSURE_PARTITIONS_COUNT,
            .column_names =
                NAMES(C_ENSURE_PARTITIONS_COUNT){[C_ENSURE_PARTITIONS_CREATED] = "created"},
        },
    [STMT_ENSURE_DATES] =
        {
            .name = "ensure_dates",
            .sql = "SELECT solarx_wh.ensure_dates(ARRAY(SELECT to_timestamp(s)"
                   " FROM unnest($1::bigint[]) AS s), $2, $3::int)",
            .nparams = P_ENSURE_DATES_COUNT,
            .param_names = NAMES(P_ENSURE_DATES_COUNT){[P_ENSURE_DATES_STARTS] = "starts",
                                                       [P_ENSURE_DATES_ZONE] = "zone",
                                                       [P_ENSURE_DATES_MINUTES] = "minutes"},
        },
    [STMT_INSERT_DEAD_LETTERS] =
        {
            .name = "insert_dead_letters",
            .sql = "INSERT INTO solarx_raw.dead_letters"
                   " (topic, \"partition\", \"offset\", key, payload, reason, error, source, "
                   "payload_bytes,"
                   "  payload_sha256)"
                   " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bytea[], "
                   "$5::bytea[],"
                   "                      $6::text[], $7::text[], $8::text[], $9::bigint[], "
                   "$10::bytea[])"
                   " ON CONFLICT DO NOTHING",
            .nparams = P_DEAD_COUNT,
            .param_names =
                NAMES(P_DEAD_COUNT){
                    [P_DEAD_TOPICS] = "topics",
                    [P_DEAD_PARTITIONS] = "partitions",
                    [P_DEAD_OFFSETS] = "offsets",
                    [P_DEAD_KEYS] = "keys",
                    [P_DEAD_PAYLOADS] = "payloads",
                    [P_DEAD_REASONS] = "reasons",
                    [P_DEAD_ERRORS] = "errors",
                    [P_DEAD_SOURCES] = "sources",
                    [P_DEAD_PAYLOAD_BYTES] = "payload_bytes",
                    [P_DEAD_PAYLOAD_SHA256] = "payload_sha256",
                },
        },
    [STMT_STORE_OFFSETS] =
        {
            .name = "store_offsets",
            .sql = "SELECT solarx_meta.store_offsets($1, $2::text[], $3::int[], $4::bigint[],"
                   " $5::bigint[])",
            .nparams = P_OFFSETS_COUNT,
            .param_names =
                NAMES(P_OFFSETS_COUNT){
                    [P_OFFSETS_GROUP] = "group",
                    [P_OFFSETS_TOPICS] = "topics",
                    [P_OFFSETS_PARTITIONS] = "partitions",
                    [P_OFFSETS_NEXT_OFFSETS] = "next_offsets",
                    [P_OFFSETS_EPOCHS] = "epochs",
                },
            .ncolumns = C_OFFSETS_COUNT,
            .column_names = NAMES(C_OFFSETS_COUNT){[C_OFFSETS_STORED] = "stored"},
        },

    [STMT_LOCK_REGISTRY_SHARED] =
        {
            .name = "lock_registry_shared",
            .sql = "SELECT pg_advisory_xact_lock_shared(" REGISTRY_LOCK_CLASS ", 0)",
        },
    [STMT_LOCK_REGISTRY_EXCLUSIVE] =
        {
            .name = "lock_registry_exclusive",
            .sql = "SELECT pg_advisory_xact_lock(" REGISTRY_LOCK_CLASS ", 0)",
        },
    [STMT_LOCK_BATTERY_HOMES] =
        {
            .name = "lock_battery_homes",
            .sql = "SELECT count(pg_advisory_xact_lock(" BATTERY_LOCK_CLASS ", h))"
                   " FROM (SELECT DISTINCT h FROM unnest($1::int[]) AS h ORDER BY h) AS s",
            .nparams = P_BATTERY_LOCKS_COUNT,
            .param_names = NAMES(P_BATTERY_LOCKS_COUNT){[P_BATTERY_LOCKS_HOME_IDS] = "home_ids"},
        },
    [STMT_READ_BATTERY_VERSIONS] =
        {
            .name = "read_battery_versions",
            .sql = "SELECT d.home_id, d.battery_id, extract(epoch FROM d.start_date)::bigint,"
                   " extract(epoch FROM d.last_seen)::bigint, d.capacity_kwh, d.max_charge_speed_w,"
                   " d.max_output_w"
                   " FROM unnest($1::int[], $2::int[]) AS k(home_id, battery_id)"
                   " JOIN solarx_wh.dim_battery d USING (home_id, battery_id)"
                   " ORDER BY d.home_id, d.battery_id, d.start_date",
            .nparams = P_BATTERY_DEVICES_COUNT,
            .param_names =
                NAMES(P_BATTERY_DEVICES_COUNT){[P_BATTERY_DEVICES_HOME_IDS] = "home_ids",
                                               [P_BATTERY_DEVICES_BATTERY_IDS] = "battery_ids"},
            .ncolumns = C_BATTERY_VERSION_COUNT,
            .column_names =
                NAMES(C_BATTERY_VERSION_COUNT){
                    [C_BATTERY_VERSION_HOME_ID] = "home_id",
                    [C_BATTERY_VERSION_BATTERY_ID] = "battery_id",
                    [C_BATTERY_VERSION_START] = "start",
                    [C_BATTERY_VERSION_LAST_SEEN] = "last_seen",
                    [C_BATTERY_VERSION_CAPACITY_KWH] = "capacity_kwh",
                    [C_BATTERY_VERSION_MAX_CHARGE_SPEED_W] = "max_charge_speed_w",
                    [C_BATTERY_VERSION_MAX_OUTPUT_W] = "max_output_w",
                },
        },
    [STMT_READ_BATTERY_NEIGHBOURS] =
        {
            .name = "read_battery_neighbours",
            .sql =
                "SELECT k.home_id, k.battery_id, k.start,"
                " (SELECT extract(epoch FROM f.last_ts)::bigint"
                "    FROM solarx_wh.fact_battery_power_readings f"
                "   WHERE f.home_id = k.home_id AND f.battery_id = k.battery_id"
                "     AND f.date_key < to_timestamp(k.start) ORDER BY f.date_key DESC LIMIT 1),"
                " (SELECT extract(epoch FROM f.first_ts)::bigint"
                "    FROM solarx_wh.fact_battery_power_readings f"
                "   WHERE f.home_id = k.home_id AND f.battery_id = k.battery_id"
                "     AND f.date_key > to_timestamp(k.start) ORDER BY f.date_key LIMIT 1)"
                " FROM unnest($1::int[], $2::int[], $3::bigint[]) AS k(home_id, battery_id, start)",
            .nparams = P_WINDOW_KEYS_COUNT,
            .param_names = window_key_params,
            .ncolumns = C_NEIGHBOURS_COUNT,
            .column_names =
                NAMES(C_NEIGHBOURS_COUNT){
                    [C_NEIGHBOURS_HOME_ID] = "home_id",
                    [C_NEIGHBOURS_BATTERY_ID] = "battery_id",
                    [C_NEIGHBOURS_START] = "start",
                    [C_NEIGHBOURS_PREV_LAST_TS] = "prev_last_ts",
                    [C_NEIGHBOURS_NEXT_FIRST_TS] = "next_first_ts",
                },
        },
    [STMT_READ_HOME_VERSIONS] =
        {
            .name = "read_home_versions",
            .sql =
                "SELECT home_id, extract(epoch FROM start_date)::bigint, min_consumption_power_wh,"
                " max_consumption_power_wh FROM solarx_wh.dim_home"
                " WHERE home_id = ANY($1::int[]) ORDER BY home_id, start_date",
            .nparams = P_HOME_VERSIONS_COUNT,
            .param_names = NAMES(P_HOME_VERSIONS_COUNT){[P_HOME_VERSIONS_HOME_IDS] = "home_ids"},
            .ncolumns = C_HOME_VERSION_COUNT,
            .column_names = NAMES(C_HOME_VERSION_COUNT){[C_HOME_VERSION_HOME_ID] = "home_id",
                                                        [C_HOME_VERSION_START] = "start",
                                                        [C_HOME_VERSION_MIN_W] = "min_w",
                                                        [C_HOME_VERSION_MAX_W] = "max_w"},
        },
    [STMT_READ_PANEL_VERSIONS] =
        {
            .name = "read_panel_versions",
            .sql = "SELECT solar_panel_id, home_id, name, extract(epoch FROM start_date)::bigint,"
                   " capacity_kwh, intensity_power_rating_wh, temperature_power_rating_c"
                   " FROM solarx_wh.dim_solar_panel"
                   " WHERE solar_panel_id = ANY($1::int[]) ORDER BY solar_panel_id, start_date",
            .nparams = P_PANEL_VERSIONS_COUNT,
            .param_names =
                NAMES(P_PANEL_VERSIONS_COUNT){[P_PANEL_VERSIONS_PANEL_IDS] = "panel_ids"},
            .ncolumns = C_PANEL_VERSION_COUNT,
            .column_names =
                NAMES(C_PANEL_VERSION_COUNT){
                    [C_PANEL_VERSION_PANEL_ID] = "panel_id",
                    [C_PANEL_VERSION_HOME_ID] = "home_id",
                    [C_PANEL_VERSION_NAME] = "name",
                    [C_PANEL_VERSION_START] = "start",
                    [C_PANEL_VERSION_CAPACITY_KWH] = "capacity_kwh",
                    [C_PANEL_VERSION_INTENSITY_W] = "intensity_w",
                    [C_PANEL_VERSION_TEMPERATURE_C] = "temperature_c",
                },
        },

    [STMT_DELETE_HOME_VERSIONS] =
        {
            .name = "delete_home_versions",
            .sql = "DELETE FROM solarx_wh.dim_home WHERE home_id = ANY($1::int[])"
                   " AND home_key <> ALL($2::bigint[])",
            .nparams = P_DELETE_VERSIONS_COUNT,
            .param_names = delete_versions_params,
        },
    [STMT_DELETE_PANEL_VERSIONS] =
        {
            .name = "delete_panel_versions",
            .sql = "DELETE FROM solarx_wh.dim_solar_panel WHERE solar_panel_id = ANY($1::int[])"
                   " AND solar_panel_key <> ALL($2::bigint[])",
            .nparams = P_DELETE_VERSIONS_COUNT,
            .param_names = delete_versions_params,
        },
    [STMT_DELETE_BATTERY_VERSIONS] =
        {
            .name = "delete_battery_versions",
            .sql = "DELETE FROM solarx_wh.dim_battery WHERE (home_id, battery_id) IN"
                   " (SELECT * FROM unnest($1::int[], $2::int[]))"
                   " AND battery_key <> ALL($3::bigint[])",
            .nparams = P_DELETE_BATTERY_VERSIONS_COUNT,
            .param_names =
                NAMES(P_DELETE_BATTERY_VERSIONS_COUNT){
                    [P_DELETE_BATTERY_VERSIONS_HOME_IDS] = "home_ids",
                    [P_DELETE_BATTERY_VERSIONS_BATTERY_IDS] = "battery_ids",
                    [P_DELETE_BATTERY_VERSIONS_KEPT_KEYS] = "kept_keys",
                },
        },
    [STMT_UPSERT_HOME_VERSIONS] =
        {
            .name = "upsert_home_versions",
            .sql = "INSERT INTO solarx_wh.dim_home (home_key, home_id, min_consumption_power_wh,"
                   " max_consumption_power_wh, start_date, end_date, current_flag)"
                   " SELECT k, h, mn, mx, to_timestamp(s), to_timestamp(e), c"
                   " FROM unnest($1::bigint[], $2::int[], $3::numeric[], $4::numeric[],"
                   "             $5::bigint[], $6::bigint[], $7::bool[])"
                   "      AS u(k, h, mn, mx, s, e, c)"
                   " ON CONFLICT (home_key) DO UPDATE SET"
                   " min_consumption_power_wh = EXCLUDED.min_consumption_power_wh,"
                   " max_consumption_power_wh = EXCLUDED.max_consumption_power_wh,"
                   " end_date = EXCLUDED.end_date, current_flag = EXCLUDED.current_flag",
            .nparams = P_HOME_VERSION_COUNT,
            .param_names =
                NAMES(P_HOME_VERSION_COUNT){
                    [P_HOME_VERSION_KEYS] = "keys",
                    [P_HOME_VERSION_HOME_IDS] = "home_ids",
                    [P_HOME_VERSION_MINS_W] = "mins_w",
                    [P_HOME_VERSION_MAXS_W] = "maxs_w",
                    [P_HOME_VERSION_STARTS] = "starts",
                    [P_HOME_VERSION_ENDS] = "ends",
                    [P_HOME_VERSION_CURRENT] = "current",
                },
        },
    [STMT_UPSERT_PANEL_VERSIONS] =
        {
            .name = "upsert_panel_versions",
            .sql =
                "INSERT INTO solarx_wh.dim_solar_panel (solar_panel_key, solar_panel_id, home_id,"
                " name, capacity_kwh, intensity_power_rating_wh, temperature_power_rating_c,"
                " start_date, end_date, current_flag)"
                " SELECT k, p, h, nm, cap, it, tp, to_timestamp(s), to_timestamp(e), c"
                " FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::numeric[],"
                "             $6::numeric[], $7::numeric[], $8::bigint[], $9::bigint[], "
                "$10::bool[])"
                "      AS u(k, p, h, nm, cap, it, tp, s, e, c)"
                " ON CONFLICT (solar_panel_key) DO UPDATE SET home_id = EXCLUDED.home_id,"
                " name = EXCLUDED.name, capacity_kwh = EXCLUDED.capacity_kwh,"
                " intensity_power_rating_wh = EXCLUDED.intensity_power_rating_wh,"
                " temperature_power_rating_c = EXCLUDED.temperature_power_rating_c,"
                " end_date = EXCLUDED.end_date, current_flag = EXCLUDED.current_flag",
            .nparams = P_PANEL_VERSION_COUNT,
            .param_names =
                NAMES(P_PANEL_VERSION_COUNT){
                    [P_PANEL_VERSION_KEYS] = "keys",
                    [P_PANEL_VERSION_PANEL_IDS] = "panel_ids",
                    [P_PANEL_VERSION_HOME_IDS] = "home_ids",
                    [P_PANEL_VERSION_NAMES] = "names",
                    [P_PANEL_VERSION_CAPACITIES_KWH] = "capacities_kwh",
                    [P_PANEL_VERSION_INTENSITIES_W] = "intensities_w",
                    [P_PANEL_VERSION_TEMPERATURES_C] = "temperatures_c",
                    [P_PANEL_VERSION_STARTS] = "starts",
                    [P_PANEL_VERSION_ENDS] = "ends",
                    [P_PANEL_VERSION_CURRENT] = "current",
                },
        },
    [STMT_UPSERT_BATTERY_VERSIONS] =
        {
            .name = "upsert_battery_versions",
            .sql =
                "INSERT INTO solarx_wh.dim_battery (battery_key, home_id, battery_id, name,"
                " capacity_kwh, max_charge_speed_w, max_output_w, start_date, last_seen, end_date,"
                " current_flag)"
                " SELECT k, h, b, 'battery_' || b, cap, sp, mo, to_timestamp(s), to_timestamp(l),"
                "        to_timestamp(e), c"
                " FROM unnest($1::bigint[], $2::int[], $3::int[], $4::numeric[], $5::numeric[],"
                "             $6::numeric[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bool[])"
                "      AS u(k, h, b, cap, sp, mo, s, l, e, c)"
                " ON CONFLICT (battery_key) DO UPDATE SET capacity_kwh = EXCLUDED.capacity_kwh,"
                " max_charge_speed_w = EXCLUDED.max_charge_speed_w,"
                " max_output_w = EXCLUDED.max_output_w, last_seen = EXCLUDED.last_seen,"
                " end_date = EXCLUDED.end_date, current_flag = EXCLUDED.current_flag",
            .nparams = P_BATTERY_VERSION_COUNT,
            .param_names =
                NAMES(P_BATTERY_VERSION_COUNT){
                    [P_BATTERY_VERSION_KEYS] = "keys",
                    [P_BATTERY_VERSION_HOME_IDS] = "home_ids",
                    [P_BATTERY_VERSION_BATTERY_IDS] = "battery_ids",
                    [P_BATTERY_VERSION_CAPACITIES_KWH] = "capacities_kwh",
                    [P_BATTERY_VERSION_MAX_CHARGE_SPEEDS_W] = "max_charge_speeds_w",
                    [P_BATTERY_VERSION_MAX_OUTPUTS_W] = "max_outputs_w",
                    [P_BATTERY_VERSION_STARTS] = "starts",
                    [P_BATTERY_VERSION_LAST_SEEN] = "last_seen",
                    [P_BATTERY_VERSION_ENDS] = "ends",
                    [P_BATTERY_VERSION_CURRENT] = "current",
                },
        },
    [STMT_DELETE_APPLIANCES] =
        {
            .name = "delete_appliances",
            .sql = "DELETE FROM solarx_wh.dim_home_appliances WHERE home_id = ANY($1::int[])",
            .nparams = P_DELETE_APPLIANCES_COUNT,
            .param_names =
                NAMES(P_DELETE_APPLIANCES_COUNT){[P_DELETE_APPLIANCES_HOME_IDS] = "home_ids"},
        },
    [STMT_INSERT_APPLIANCES] =
        {
            .name = "insert_appliances",
            .sql =
                "INSERT INTO solarx_wh.dim_home_appliances (home_appliance_key, home_id, appliance,"
                " min_consumption_power_wh, max_consumption_power_wh, usage_time)"
                " SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::numeric[],"
                "                      $5::numeric[], $6::text[])",
            .nparams = P_APPLIANCE_COUNT,
            .param_names =
                NAMES(P_APPLIANCE_COUNT){
                    [P_APPLIANCE_KEYS] = "keys",
                    [P_APPLIANCE_HOME_IDS] = "home_ids",
                    [P_APPLIANCE_NAMES] = "names",
                    [P_APPLIANCE_MINS_W] = "mins_w",
                    [P_APPLIANCE_MAXS_W] = "maxs_w",
                    [P_APPLIANCE_USAGE_TIMES] = "usage_times",
                },
        },

    /* The version in effect at the window's last reading: the last one starting at or before
     * it, else (a reading older than every version) the first one -- dim_history_version_at. */
    [STMT_REPOINT_HOME_FACTS] =
        {
            .name = "repoint_home_facts",
            .sql = "UPDATE solarx_wh.fact_home_power_readings f SET home_key ="
                   " (SELECT d.home_key FROM solarx_wh.dim_home d WHERE d.home_id = f.home_id"
                   "   ORDER BY d.start_date <= f.last_ts DESC,"
                   "   CASE WHEN d.start_date <= f.last_ts THEN d.start_date END DESC NULLS LAST,"
                   "   d.start_date LIMIT 1)"
                   " WHERE f.home_id = ANY($1::int[])",
            .nparams = P_REPOINT_COUNT,
            .param_names = repoint_params,
        },
    [STMT_REPOINT_PANEL_FACTS] =
        {
            .name = "repoint_panel_facts",
            .sql = "UPDATE solarx_wh.fact_solar_panel_power_readings f SET solar_panel_key ="
                   " (SELECT d.solar_panel_key FROM solarx_wh.dim_solar_panel d"
                   "   WHERE d.solar_panel_id = f.solar_panel_id"
                   "   ORDER BY d.start_date <= f.last_ts DESC,"
                   "   CASE WHEN d.start_date <= f.last_ts THEN d.start_date END DESC NULLS LAST,"
                   "   d.start_date LIMIT 1)"
                   " WHERE f.solar_panel_id = ANY($1::int[])",
            .nparams = P_REPOINT_COUNT,
            .param_names = repoint_params,
        },
    [STMT_REPOINT_BATTERY_FACTS] =
        {
            .name = "repoint_battery_facts",
            .sql =
                "UPDATE solarx_wh.fact_battery_power_readings f SET battery_key ="
                " (SELECT d.battery_key FROM solarx_wh.dim_battery d"
                "   WHERE d.home_id = f.home_id AND d.battery_id = f.battery_id"
                "   ORDER BY d.start_date <= f.last_ts DESC,"
                "   CASE WHEN d.start_date <= f.last_ts THEN d.start_date END DESC NULLS LAST,"
                "   d.start_date LIMIT 1)"
                " WHERE (f.home_id, f.battery_id) IN (SELECT * FROM unnest($1::int[], $2::int[]))",
            .nparams = P_REPOINT_BATTERY_COUNT,
            .param_names =
                NAMES(P_REPOINT_BATTERY_COUNT){[P_REPOINT_BATTERY_HOME_IDS] = "home_ids",
                                               [P_REPOINT_BATTERY_BATTERY_IDS] = "battery_ids"},
        },
};

const struct stmt_def *stmt_get(enum stmt_id id)
{
    return &statements[id];
}
