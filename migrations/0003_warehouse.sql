-- The warehouse at window grain (15 minutes by default): dim_date, the SCD2
-- dimensions and the facts. A fact row is the persistent state of its window:
-- aggregates plus seconds_seen, a bitmap of the seconds already counted (bit i
-- of byte i/8, least significant first = second date_key + i), so replays and
-- duplicates merge to the same row.

CREATE TABLE solarx_wh.dim_date (
    date_key        timestamptz PRIMARY KEY,       -- window start
    local_date      date        NOT NULL,          -- in the sites' source_timezone
    year            smallint    NOT NULL,
    quarter         smallint    NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    month           smallint    NOT NULL CHECK (month BETWEEN 1 AND 12),
    week            smallint    NOT NULL CHECK (week BETWEEN 1 AND 53),  -- ISO week
    day             smallint    NOT NULL CHECK (day BETWEEN 1 AND 31),
    day_of_week     smallint    NOT NULL CHECK (day_of_week BETWEEN 1 AND 7),  -- ISO, 1 = Monday
    hour            smallint    NOT NULL CHECK (hour BETWEEN 0 AND 23),
    minute          smallint    NOT NULL CHECK (minute BETWEEN 0 AND 59),
    interval_of_day smallint    NOT NULL CHECK (interval_of_day BETWEEN 0 AND 1439), -- 0-95 at 15 min
    is_weekend      boolean     NOT NULL
);

-- Inserts the dim_date rows of window starts not yet known. Calendar fields
-- are local time in p_tz; interval_of_day counts windows of p_window_minutes.
CREATE FUNCTION solarx_wh.ensure_dates(p_keys timestamptz[], p_tz text, p_window_minutes integer)
RETURNS integer LANGUAGE sql AS $$
    WITH ins AS (
        INSERT INTO solarx_wh.dim_date
        SELECT k, l::date, extract(year FROM l), extract(quarter FROM l), extract(month FROM l),
               extract(week FROM l), extract(day FROM l), extract(isodow FROM l),
               extract(hour FROM l), extract(minute FROM l),
               (extract(hour FROM l) * 60 + extract(minute FROM l))::integer / p_window_minutes,
               extract(isodow FROM l) >= 6
          FROM (SELECT DISTINCT k, k AT TIME ZONE p_tz AS l FROM unnest(p_keys) AS k) AS keys
        ON CONFLICT (date_key) DO NOTHING
        RETURNING 1)
    SELECT count(*)::integer FROM ins
$$;

-- Type 1: the appliance registry as loaded last.
CREATE TABLE solarx_wh.dim_home_appliances (
    home_appliance_key       bigint        PRIMARY KEY,  -- stable hash of (home_id, appliance)
    home_id                  integer       NOT NULL,
    appliance                text          NOT NULL,
    min_consumption_power_wh numeric(24,6) NOT NULL CHECK (min_consumption_power_wh >= 0),
    max_consumption_power_wh numeric(24,6) NOT NULL CHECK (max_consumption_power_wh >= min_consumption_power_wh),
    usage_time               text          NOT NULL,
    updated_at               timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (home_id, appliance)
);

-- SCD2 dimensions. Surrogate keys are deterministic hashes of the natural key
-- and start_date (never a sequence), so a replay produces the same keys.
-- start_date is event time; end_date is the next version's start_date (NULL: open).
CREATE TABLE solarx_wh.dim_home (
    home_key                 bigint        PRIMARY KEY,
    home_id                  integer       NOT NULL,
    min_consumption_power_wh numeric(24,6) NOT NULL,
    max_consumption_power_wh numeric(24,6) NOT NULL,
    start_date               timestamptz   NOT NULL,
    end_date                 timestamptz,
    current_flag             boolean       NOT NULL,
    UNIQUE (home_id, start_date),
    CHECK (end_date IS NULL OR end_date > start_date),
    CHECK (current_flag = (end_date IS NULL))
);

CREATE TABLE solarx_wh.dim_solar_panel (
    solar_panel_key            bigint        PRIMARY KEY,
    solar_panel_id             integer       NOT NULL,
    home_id                    integer       NOT NULL,
    name                       text          NOT NULL,
    capacity_kwh               numeric(24,6) NOT NULL,
    intensity_power_rating_wh  numeric(24,6) NOT NULL,
    temperature_power_rating_c numeric(24,6) NOT NULL,
    start_date                 timestamptz   NOT NULL,
    end_date                   timestamptz,
    current_flag               boolean       NOT NULL,
    UNIQUE (solar_panel_id, start_date),
    CHECK (end_date IS NULL OR end_date > start_date),
    CHECK (current_flag = (end_date IS NULL))
);

-- From the battery stream itself: a version is a maximal run of readings (in
-- event time) with identical capacity and speeds; last_seen is its last reading.
CREATE TABLE solarx_wh.dim_battery (
    battery_key        bigint        PRIMARY KEY,
    home_id            integer       NOT NULL,
    battery_id         integer       NOT NULL,
    name               text          NOT NULL,
    capacity_kwh       numeric(24,6) NOT NULL,
    max_charge_speed_w numeric(24,6) NOT NULL,
    max_output_w       numeric(24,6) NOT NULL,
    start_date         timestamptz   NOT NULL,
    last_seen          timestamptz   NOT NULL,
    end_date           timestamptz,
    current_flag       boolean       NOT NULL,
    UNIQUE (home_id, battery_id, start_date),
    CHECK (last_seen >= start_date),
    CHECK (end_date IS NULL OR end_date > last_seen),
    CHECK (current_flag = (end_date IS NULL))
);

CREATE TABLE solarx_wh.fact_home_power_readings (
    home_id             integer       NOT NULL,
    date_key            timestamptz   NOT NULL REFERENCES solarx_wh.dim_date,
    home_key            bigint,                         -- dim_home version in effect at date_key
    consumption_wh      numeric(28,6) NOT NULL,
    readings_count      integer       NOT NULL CHECK (readings_count > 0),
    min_consumption_wh  numeric(24,6) NOT NULL,
    max_consumption_wh  numeric(24,6) NOT NULL,
    last_accumulated_wh numeric(24,6) NOT NULL,
    first_ts            timestamptz   NOT NULL,
    last_ts             timestamptz   NOT NULL,
    window_seconds      integer       NOT NULL,
    completeness        numeric(6,5)  GENERATED ALWAYS AS
                            (round(readings_count::numeric / window_seconds, 5)) STORED,
    seconds_seen        bytea         NOT NULL,
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, date_key)
);
CREATE INDEX fact_home_power_readings_date_idx ON solarx_wh.fact_home_power_readings (date_key);

CREATE TABLE solarx_wh.fact_solar_panel_power_readings (
    solar_panel_id      integer       NOT NULL,
    date_key            timestamptz   NOT NULL REFERENCES solarx_wh.dim_date,
    solar_panel_key     bigint,                         -- dim_solar_panel version at date_key
    home_id             integer       NOT NULL,
    generation_power_wh numeric(28,6) NOT NULL,
    readings_count      integer       NOT NULL CHECK (readings_count > 0),
    min_generation_wh   numeric(24,6) NOT NULL,
    max_generation_wh   numeric(24,6) NOT NULL,
    last_accumulated_wh numeric(24,6) NOT NULL,
    first_ts            timestamptz   NOT NULL,
    last_ts             timestamptz   NOT NULL,
    window_seconds      integer       NOT NULL,
    completeness        numeric(6,5)  GENERATED ALWAYS AS
                            (round(readings_count::numeric / window_seconds, 5)) STORED,
    seconds_seen        bytea         NOT NULL,
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (solar_panel_id, date_key)
);
CREATE INDEX fact_solar_panel_power_readings_date_idx
    ON solarx_wh.fact_solar_panel_power_readings (date_key);

CREATE TABLE solarx_wh.fact_battery_power_readings (
    home_id            integer       NOT NULL,
    battery_id         integer       NOT NULL,
    date_key           timestamptz   NOT NULL REFERENCES solarx_wh.dim_date,
    battery_key        bigint,                          -- dim_battery version at date_key
    -- as of the window's last reading:
    current_energy_wh  numeric(24,6) NOT NULL,
    is_charging        boolean       NOT NULL,
    status             text          NOT NULL CHECK (status IN ('ideal', 'charging', 'discharging')),
    capacity_kwh       numeric(24,6) NOT NULL,
    max_charge_speed_w numeric(24,6) NOT NULL,
    max_output_w       numeric(24,6) NOT NULL,
    min_energy_wh      numeric(24,6) NOT NULL,
    max_energy_wh      numeric(24,6) NOT NULL,
    readings_count     integer       NOT NULL CHECK (readings_count > 0),
    first_ts           timestamptz   NOT NULL,
    last_ts            timestamptz   NOT NULL,
    window_seconds     integer       NOT NULL,
    completeness       numeric(6,5)  GENERATED ALWAYS AS
                           (round(readings_count::numeric / window_seconds, 5)) STORED,
    seconds_seen       bytea         NOT NULL,
    updated_at         timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, battery_id, date_key)
);
CREATE INDEX fact_battery_power_readings_date_idx
    ON solarx_wh.fact_battery_power_readings (date_key);
