-- Analytics people can trust: every home's windows against the calendar, battery charge and
-- discharge from the change in stored energy, grid import/export as the remainder,
-- self-sufficiency, daily and monthly rollups, state of charge against the dim_battery version
-- in effect, completeness per device and window, and the latest reading per device.
-- Replaces the four views of 0004 (same names, more columns; the old columns keep their
-- meaning). Energies are Wh with 6 decimals (numeric(28,6)), as in the facts. README.md,
-- "Asking questions with psql", explains every column.
--
-- Definitions:
-- * A home's calendar is every window from the home's first to its last window (over its
--   consumption, solar and battery facts), every window_seconds: generate_series. A window of the
--   calendar without any fact row of the home is an outage (has_data = false).
-- * local_date is the day in source_timezone, from dim_date; a window without a dim_date row (an
--   outage) takes the local time of the nearest earlier dim_date row plus the time since then.
-- * A battery's calendar runs from its own first to its own last window. Its stored energy at a
--   window is current_energy_wh as of the window's last reading. The change over window W is
--   energy(W) - energy(W - window): known only when both windows have a fact row of the battery.
--   So the battery's first window, a window without its readings, and the window right after such
--   a gap have an unknown change (NULL); energy moved across a gap is not attributed to a window.
--   battery_charge_wh = max(0, change), battery_discharge_wh = max(0, -change).
-- * Per home and window the battery columns are sums over the home's batteries whose calendar
--   covers the window (0 when none does), NULL when one of them has an unknown change.
-- * grid_import_wh  = max(0, consumption - generation + charge - discharge),
--   grid_export_wh  = max(0, -(consumption - generation + charge - discharge)); NULL when the
--   battery change is unknown.
-- * self_sufficiency = 1 - min(grid_import, consumption) / consumption: the share of consumption
--   not imported from the grid (import beyond consumption charged the battery), 6 decimals; NULL
--   when consumption is 0 or the import is unknown. Rollups weight windows by consumption:
--   1 - sum(min(import, consumption)) / sum(consumption) over the windows whose import is known.

DROP VIEW solarx_wh.v_daily_summary;
DROP VIEW solarx_wh.v_energy_balance;
DROP VIEW solarx_wh.v_battery_state_of_charge;
DROP VIEW solarx_wh.v_data_completeness;

-- Every window of every home's calendar, with its local date and whether any fact row exists.
CREATE VIEW solarx_wh.v_home_windows AS
WITH windows_with_data AS (
    SELECT home_id, date_key, max(window_seconds) AS window_seconds
      FROM (SELECT home_id, date_key, window_seconds FROM solarx_wh.fact_home_power_readings
            UNION ALL
            SELECT home_id, date_key, window_seconds
              FROM solarx_wh.fact_solar_panel_power_readings
            UNION ALL
            SELECT home_id, date_key, window_seconds
              FROM solarx_wh.fact_battery_power_readings) f
     GROUP BY home_id, date_key
), span AS (
    SELECT home_id, min(date_key) AS first_window, max(date_key) AS last_window,
           max(window_seconds) AS window_seconds
      FROM windows_with_data
     GROUP BY home_id
), calendar AS (
    SELECT s.home_id, w.date_key, s.window_seconds
      FROM span s
     CROSS JOIN LATERAL generate_series(s.first_window, s.last_window,
                                        make_interval(secs => s.window_seconds)) AS w(date_key)
)
SELECT c.home_id,
       c.date_key,
       c.window_seconds,
       l.local_ts::date AS local_date,
       d.home_id IS NOT NULL AS has_data
  FROM calendar c
  LEFT JOIN windows_with_data d ON d.home_id = c.home_id AND d.date_key = c.date_key
  LEFT JOIN LATERAL (
        SELECT dd.local_date + make_interval(hours => dd.hour, mins => dd.minute)
                   + (c.date_key - dd.date_key) AS local_ts
          FROM solarx_wh.dim_date dd
         WHERE dd.date_key <= c.date_key
         ORDER BY dd.date_key DESC
         LIMIT 1) l ON true;

-- Every window of every battery's calendar: stored energy and its change (see the definitions).
CREATE VIEW solarx_wh.v_battery_windows AS
WITH span AS (
    SELECT home_id, battery_id, min(date_key) AS first_window, max(date_key) AS last_window,
           max(window_seconds) AS window_seconds
      FROM solarx_wh.fact_battery_power_readings
     GROUP BY home_id, battery_id
), calendar AS (
    SELECT s.home_id, s.battery_id, w.date_key, s.window_seconds
      FROM span s
     CROSS JOIN LATERAL generate_series(s.first_window, s.last_window,
                                        make_interval(secs => s.window_seconds)) AS w(date_key)
), energies AS (
    SELECT c.home_id, c.battery_id, c.date_key, c.window_seconds,
           f.current_energy_wh,
           lag(f.current_energy_wh) OVER (PARTITION BY c.home_id, c.battery_id
                                              ORDER BY c.date_key) AS previous_energy_wh,
           coalesce(f.readings_count, 0) AS readings_count
      FROM calendar c
      LEFT JOIN solarx_wh.fact_battery_power_readings f
        ON f.home_id = c.home_id AND f.battery_id = c.battery_id AND f.date_key = c.date_key
)
SELECT home_id, battery_id, date_key, window_seconds, readings_count,
       current_energy_wh::numeric(24,6) AS current_energy_wh,
       previous_energy_wh::numeric(24,6) AS previous_energy_wh,
       (current_energy_wh - previous_energy_wh)::numeric(28,6) AS stored_energy_change_wh,
       -- greatest() skips NULLs: an unknown change must stay NULL, not become 0.
       CASE WHEN current_energy_wh >= previous_energy_wh THEN current_energy_wh - previous_energy_wh
            WHEN current_energy_wh < previous_energy_wh THEN 0 END::numeric(28,6)
           AS battery_charge_wh,
       CASE WHEN current_energy_wh <= previous_energy_wh THEN previous_energy_wh - current_energy_wh
            WHEN current_energy_wh > previous_energy_wh THEN 0 END::numeric(28,6)
           AS battery_discharge_wh
  FROM energies;

-- Battery state of charge at the end of each window with readings, against the capacity of the
-- dim_battery version in effect at the window's last reading (SCD2 by time).
CREATE VIEW solarx_wh.v_battery_state_of_charge AS
SELECT f.home_id,
       f.battery_id,
       f.date_key,
       f.last_ts,
       d.battery_key,
       f.current_energy_wh,
       d.capacity_kwh,
       round(100 * f.current_energy_wh / (d.capacity_kwh * 1000), 2)::numeric(7,2)
           AS state_of_charge_pct,
       w.previous_energy_wh,
       w.battery_charge_wh,
       w.battery_discharge_wh,
       f.min_energy_wh,
       f.max_energy_wh,
       f.status,
       f.is_charging
  FROM solarx_wh.fact_battery_power_readings f
  JOIN solarx_wh.v_battery_windows w
    ON w.home_id = f.home_id AND w.battery_id = f.battery_id AND w.date_key = f.date_key
  LEFT JOIN solarx_wh.dim_battery d
    ON d.home_id = f.home_id AND d.battery_id = f.battery_id
   AND d.start_date <= f.last_ts AND (d.end_date IS NULL OR f.last_ts < d.end_date);

-- Energy balance per home and calendar window (Wh).
CREATE VIEW solarx_wh.v_energy_balance AS
WITH generation AS (
    SELECT home_id, date_key, sum(generation_power_wh) AS generation_wh,
           sum(readings_count) AS readings_count
      FROM solarx_wh.fact_solar_panel_power_readings
     GROUP BY home_id, date_key
), battery AS (
    SELECT home_id, date_key,
           CASE WHEN bool_and(stored_energy_change_wh IS NOT NULL)
                THEN sum(battery_charge_wh) END AS battery_charge_wh,
           CASE WHEN bool_and(stored_energy_change_wh IS NOT NULL)
                THEN sum(battery_discharge_wh) END AS battery_discharge_wh,
           sum(readings_count) AS readings_count
      FROM solarx_wh.v_battery_windows
     GROUP BY home_id, date_key
), flows AS (
    SELECT w.home_id, w.date_key, w.local_date, w.window_seconds, w.has_data,
           coalesce(h.consumption_wh, 0) AS consumption_wh,
           coalesce(g.generation_wh, 0) AS generation_wh,
           CASE WHEN b.home_id IS NULL THEN 0 ELSE b.battery_charge_wh END AS battery_charge_wh,
           CASE WHEN b.home_id IS NULL THEN 0 ELSE b.battery_discharge_wh END AS battery_discharge_wh,
           coalesce(h.readings_count, 0) AS home_readings,
           coalesce(g.readings_count, 0) AS solar_readings,
           coalesce(b.readings_count, 0) AS battery_readings,
           h.completeness AS consumption_completeness
      FROM solarx_wh.v_home_windows w
      LEFT JOIN solarx_wh.fact_home_power_readings h
        ON h.home_id = w.home_id AND h.date_key = w.date_key
      LEFT JOIN generation g ON g.home_id = w.home_id AND g.date_key = w.date_key
      LEFT JOIN battery b ON b.home_id = w.home_id AND b.date_key = w.date_key
), grid AS (
    SELECT f.*,
           f.consumption_wh - f.generation_wh + f.battery_charge_wh - f.battery_discharge_wh
               AS grid_net_wh
      FROM flows f
)
SELECT home_id,
       date_key,
       local_date,
       window_seconds,
       has_data,
       consumption_wh::numeric(28,6) AS consumption_wh,
       generation_wh::numeric(28,6) AS generation_wh,
       battery_charge_wh::numeric(28,6) AS battery_charge_wh,
       battery_discharge_wh::numeric(28,6) AS battery_discharge_wh,
       CASE WHEN grid_net_wh IS NOT NULL THEN greatest(grid_net_wh, 0) END::numeric(28,6)
           AS grid_import_wh,
       CASE WHEN grid_net_wh IS NOT NULL THEN greatest(-grid_net_wh, 0) END::numeric(28,6)
           AS grid_export_wh,
       CASE WHEN consumption_wh > 0 AND grid_net_wh IS NOT NULL
            THEN round(1 - least(greatest(grid_net_wh, 0), consumption_wh) / consumption_wh, 6)
       END::numeric(7,6) AS self_sufficiency,
       (generation_wh - consumption_wh)::numeric(28,6) AS net_wh,
       home_readings::integer AS home_readings,
       solar_readings::integer AS solar_readings,
       battery_readings::integer AS battery_readings,
       consumption_completeness
  FROM grid;

-- One row per home and local day (source_timezone) of its calendar.
CREATE VIEW solarx_wh.v_daily_summary AS
SELECT home_id,
       local_date,
       count(*)::integer AS windows,
       count(*) FILTER (WHERE NOT has_data)::integer AS missing_windows,
       count(*) FILTER (WHERE grid_import_wh IS NULL)::integer AS unbalanced_windows,
       sum(consumption_wh)::numeric(28,6) AS consumption_wh,
       sum(generation_wh)::numeric(28,6) AS generation_wh,
       coalesce(sum(battery_charge_wh), 0)::numeric(28,6) AS battery_charge_wh,
       coalesce(sum(battery_discharge_wh), 0)::numeric(28,6) AS battery_discharge_wh,
       coalesce(sum(grid_import_wh), 0)::numeric(28,6) AS grid_import_wh,
       coalesce(sum(grid_export_wh), 0)::numeric(28,6) AS grid_export_wh,
       round(1 - sum(least(grid_import_wh, consumption_wh)) FILTER (WHERE grid_import_wh IS NOT NULL)
                 / nullif(sum(consumption_wh) FILTER (WHERE grid_import_wh IS NOT NULL), 0),
             6)::numeric(7,6) AS self_sufficiency,
       sum(net_wh)::numeric(28,6) AS net_wh,
       max(consumption_wh)::numeric(28,6) AS peak_window_consumption_wh,
       round(sum(home_readings)::numeric / sum(window_seconds), 5)::numeric(6,5)
           AS consumption_completeness
  FROM solarx_wh.v_energy_balance
 GROUP BY home_id, local_date;

-- One row per home and local month (its first day), same columns and rules as the daily one.
CREATE VIEW solarx_wh.v_monthly_summary AS
SELECT home_id,
       date_trunc('month', local_date)::date AS local_month,
       count(*)::integer AS windows,
       count(*) FILTER (WHERE NOT has_data)::integer AS missing_windows,
       count(*) FILTER (WHERE grid_import_wh IS NULL)::integer AS unbalanced_windows,
       sum(consumption_wh)::numeric(28,6) AS consumption_wh,
       sum(generation_wh)::numeric(28,6) AS generation_wh,
       coalesce(sum(battery_charge_wh), 0)::numeric(28,6) AS battery_charge_wh,
       coalesce(sum(battery_discharge_wh), 0)::numeric(28,6) AS battery_discharge_wh,
       coalesce(sum(grid_import_wh), 0)::numeric(28,6) AS grid_import_wh,
       coalesce(sum(grid_export_wh), 0)::numeric(28,6) AS grid_export_wh,
       round(1 - sum(least(grid_import_wh, consumption_wh)) FILTER (WHERE grid_import_wh IS NOT NULL)
                 / nullif(sum(consumption_wh) FILTER (WHERE grid_import_wh IS NOT NULL), 0),
             6)::numeric(7,6) AS self_sufficiency,
       sum(net_wh)::numeric(28,6) AS net_wh,
       max(consumption_wh)::numeric(28,6) AS peak_window_consumption_wh,
       round(sum(home_readings)::numeric / sum(window_seconds), 5)::numeric(6,5)
           AS consumption_completeness
  FROM solarx_wh.v_energy_balance
 GROUP BY home_id, date_trunc('month', local_date);

-- Completeness per device and window of its home's calendar: the home's meter, each of its
-- panels and batteries. A window without a fact row of the device has readings_count 0.
CREATE VIEW solarx_wh.v_data_completeness AS
WITH devices AS (
    SELECT DISTINCT 'home'::text AS device_kind, home_id, home_id AS device_id
      FROM solarx_wh.v_home_windows
    UNION
    SELECT DISTINCT 'solar', home_id, solar_panel_id FROM solarx_wh.fact_solar_panel_power_readings
    UNION
    SELECT DISTINCT 'battery', home_id, battery_id FROM solarx_wh.fact_battery_power_readings
), readings AS (
    SELECT 'home'::text AS device_kind, home_id, home_id AS device_id, date_key, readings_count
      FROM solarx_wh.fact_home_power_readings
    UNION ALL
    SELECT 'solar', home_id, solar_panel_id, date_key, readings_count
      FROM solarx_wh.fact_solar_panel_power_readings
    UNION ALL
    SELECT 'battery', home_id, battery_id, date_key, readings_count
      FROM solarx_wh.fact_battery_power_readings
)
SELECT d.device_kind,
       d.home_id,
       d.device_id,
       w.date_key,
       coalesce(r.readings_count, 0) AS readings_count,
       w.window_seconds,
       round(coalesce(r.readings_count, 0)::numeric / w.window_seconds, 5)::numeric(6,5)
           AS completeness,
       r.readings_count IS NULL AS missing
  FROM devices d
  JOIN solarx_wh.v_home_windows w ON w.home_id = d.home_id
  LEFT JOIN readings r
    ON r.device_kind = d.device_kind AND r.home_id = d.home_id AND r.device_id = d.device_id
   AND r.date_key = w.date_key;

-- The latest reading of every device: its time, the window it is in, and its value (home: the
-- consumption of that second, solar: the generation of that second, battery: the stored energy).
-- The home/solar value comes from raw and is NULL once raw retention dropped that day.
CREATE VIEW solarx_wh.v_latest_reading AS
WITH last_home AS (
    SELECT DISTINCT ON (home_id) home_id, date_key, last_ts, last_accumulated_wh
      FROM solarx_wh.fact_home_power_readings
     ORDER BY home_id, date_key DESC
), last_solar AS (
    SELECT DISTINCT ON (solar_panel_id) solar_panel_id, home_id, date_key, last_ts,
           last_accumulated_wh
      FROM solarx_wh.fact_solar_panel_power_readings
     ORDER BY solar_panel_id, date_key DESC
), last_battery AS (
    SELECT DISTINCT ON (home_id, battery_id) home_id, battery_id, date_key, last_ts,
           current_energy_wh, status
      FROM solarx_wh.fact_battery_power_readings
     ORDER BY home_id, battery_id, date_key DESC
)
SELECT 'home'::text AS device_kind, l.home_id, l.home_id AS device_id, l.date_key,
       l.last_ts AS last_reading_ts, r.consumption_wh::numeric(24,6) AS energy_wh,
       l.last_accumulated_wh::numeric(24,6) AS accumulated_wh, NULL::text AS status
  FROM last_home l
  LEFT JOIN solarx_raw.home_power_readings r ON r.home_id = l.home_id AND r.ts = l.last_ts
UNION ALL
SELECT 'solar', l.home_id, l.solar_panel_id, l.date_key, l.last_ts, r.generation_wh,
       l.last_accumulated_wh, NULL
  FROM last_solar l
  LEFT JOIN solarx_raw.solar_panel_readings r ON r.panel_id = l.solar_panel_id AND r.ts = l.last_ts
UNION ALL
SELECT 'battery', l.home_id, l.battery_id, l.date_key, l.last_ts, l.current_energy_wh, NULL,
       l.status
  FROM last_battery l;
