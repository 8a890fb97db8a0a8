-- Views for people who query the warehouse with psql (examples in README.md).

-- Energy balance per home and window: what the home used, what its panels made.
CREATE VIEW solarx_wh.v_energy_balance AS
SELECT coalesce(h.home_id, s.home_id)                          AS home_id,
       coalesce(h.date_key, s.date_key)                        AS date_key,
       coalesce(h.consumption_wh, 0)                           AS consumption_wh,
       coalesce(s.generation_wh, 0)                            AS generation_wh,
       coalesce(s.generation_wh, 0) - coalesce(h.consumption_wh, 0) AS net_wh,
       h.completeness                                          AS consumption_completeness,
       s.completeness                                          AS generation_completeness
  FROM solarx_wh.fact_home_power_readings h
  FULL JOIN (SELECT home_id, date_key, sum(generation_power_wh) AS generation_wh,
                    min(completeness) AS completeness
               FROM solarx_wh.fact_solar_panel_power_readings
              GROUP BY home_id, date_key) s
    ON s.home_id = h.home_id AND s.date_key = h.date_key;

-- One row per home and local day (source_timezone, through dim_date).
CREATE VIEW solarx_wh.v_daily_summary AS
SELECT b.home_id,
       d.local_date,
       sum(b.consumption_wh)               AS consumption_wh,
       sum(b.generation_wh)                AS generation_wh,
       sum(b.net_wh)                       AS net_wh,
       max(b.consumption_wh)               AS peak_window_consumption_wh,
       count(*)                            AS windows,
       round(avg(coalesce(b.consumption_completeness, 0)), 4) AS consumption_completeness
  FROM solarx_wh.v_energy_balance b
  JOIN solarx_wh.dim_date d ON d.date_key = b.date_key
 GROUP BY b.home_id, d.local_date;

-- Battery state of charge at the end of each window.
CREATE VIEW solarx_wh.v_battery_state_of_charge AS
SELECT f.home_id,
       f.battery_id,
       f.date_key,
       f.current_energy_wh,
       f.capacity_kwh,
       round(100 * f.current_energy_wh / (f.capacity_kwh * 1000), 2) AS state_of_charge_pct,
       f.min_energy_wh,
       f.max_energy_wh,
       f.status,
       f.is_charging
  FROM solarx_wh.fact_battery_power_readings f;

-- Data completeness per device and window: readings received over seconds in the window.
CREATE VIEW solarx_wh.v_data_completeness AS
SELECT 'home'::text AS device_kind, home_id, home_id AS device_id, date_key,
       readings_count, window_seconds, completeness
  FROM solarx_wh.fact_home_power_readings
UNION ALL
SELECT 'solar', home_id, solar_panel_id, date_key, readings_count, window_seconds, completeness
  FROM solarx_wh.fact_solar_panel_power_readings
UNION ALL
SELECT 'battery', home_id, battery_id, date_key, readings_count, window_seconds, completeness
  FROM solarx_wh.fact_battery_power_readings;
