-- A version per fact row, so that a writer holding a window's state in memory (the service's
-- window cache) can tell whether anyone else wrote the row since it read or wrote it: every fact
-- write sets version = old + 1 and is applied only when the row still carries the version the
-- writer expects (0 for a row it believes absent). A mismatch makes the flush fail as transient;
-- its retry reads the row again. Adding a column with a constant default is metadata-only in
-- PostgreSQL 11 and later: no table rewrite. The views of 0004/0007 name their columns, and the
-- runtime role's grants (0008) are per table: both are unaffected.
ALTER TABLE solarx_wh.fact_home_power_readings ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE solarx_wh.fact_solar_panel_power_readings ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE solarx_wh.fact_battery_power_readings ADD COLUMN version bigint NOT NULL DEFAULT 0;
