-- Raw readings, one row per device and second, range-partitioned by UTC day on ts.
-- Quantities are exact decimals (the service sums them as fixed-point integers).

CREATE TABLE solarx_raw.home_power_readings (
    home_id        integer       NOT NULL,
    ts             timestamptz   NOT NULL,
    consumption_wh numeric(24,6) NOT NULL CHECK (consumption_wh >= 0),
    accumulated_wh numeric(24,6) NOT NULL,
    src_partition  integer,
    src_offset     bigint,
    ingested_at    timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE solarx_raw.solar_panel_readings (
    panel_id       integer       NOT NULL,
    ts             timestamptz   NOT NULL,
    home_id        integer       NOT NULL,
    generation_wh  numeric(24,6) NOT NULL CHECK (generation_wh >= 0),
    accumulated_wh numeric(24,6) NOT NULL,
    src_partition  integer,
    src_offset     bigint,
    ingested_at    timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (panel_id, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE solarx_raw.battery_readings (
    home_id            integer       NOT NULL,
    battery_id         integer       NOT NULL,
    ts                 timestamptz   NOT NULL,
    battery_name       text          NOT NULL,
    capacity_kwh       numeric(24,6) NOT NULL CHECK (capacity_kwh > 0),
    max_charge_speed_w numeric(24,6) NOT NULL CHECK (max_charge_speed_w >= 0),
    current_energy_wh  numeric(24,6) NOT NULL CHECK (current_energy_wh >= 0),
    is_charging        boolean       NOT NULL,
    status             text          NOT NULL CHECK (status IN ('ideal', 'charging', 'discharging')),
    max_output_w       numeric(24,6) NOT NULL CHECK (max_output_w >= 0),
    src_partition      integer,
    src_offset         bigint,
    ingested_at        timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, battery_id, ts)
) PARTITION BY RANGE (ts);

-- Messages that could not be decoded or validated: kept whole, with the reason
-- and the coordinates they came from, written with the offset that passes them.
CREATE TABLE solarx_raw.dead_letters (
    dead_letter_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    payload        bytea       NOT NULL,
    reason         text        NOT NULL,  -- stable label, e.g. missing_field
    error          text        NOT NULL,  -- the full message, e.g. missing_field: "time_stamp" is required
    source         text,                  -- a dump file for `ingest`, NULL for Kafka
    received_at    timestamptz NOT NULL DEFAULT now()
);
-- A Kafka message is (topic, partition, offset); a line of a dump file is (source, topic, line)
-- with partition -1 and the line number as "offset".
CREATE UNIQUE INDEX dead_letters_kafka_key ON solarx_raw.dead_letters (topic, "partition", "offset")
    WHERE source IS NULL;
CREATE UNIQUE INDEX dead_letters_file_key ON solarx_raw.dead_letters (source, topic, "offset")
    WHERE source IS NOT NULL;
CREATE INDEX dead_letters_reason_idx ON solarx_raw.dead_letters (reason);

-- Creates the day partitions of the three raw tables covering [p_from, p_to]
-- (UTC days), those that do not exist yet. Safe to call concurrently.
CREATE FUNCTION solarx_raw.ensure_day_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d       date;
    t       text;
    created integer := 0;
    part    text;
BEGIN
    IF p_to < p_from THEN
        RETURN 0;
    END IF;
    FOR d IN SELECT generate_series((p_from AT TIME ZONE 'UTC')::date,
                                    (p_to AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
        FOREACH t IN ARRAY ARRAY['home_power_readings', 'solar_panel_readings', 'battery_readings'] LOOP
            part := t || '_' || to_char(d, 'YYYYMMDD');
            IF to_regclass('solarx_raw.' || part) IS NULL THEN
                PERFORM pg_advisory_xact_lock(hashtext('solarx_raw.' || part));
                IF to_regclass('solarx_raw.' || part) IS NULL THEN
                    EXECUTE format('CREATE TABLE solarx_raw.%I PARTITION OF solarx_raw.%I '
                                   'FOR VALUES FROM (%L) TO (%L)', part, t,
                                   d::timestamp AT TIME ZONE 'UTC',
                                   (d + 1)::timestamp AT TIME ZONE 'UTC');
                    created := created + 1;
                END IF;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

-- Drops whole day partitions that end at or before p_horizon; returns how many.
CREATE FUNCTION solarx_raw.drop_partitions_before(p_horizon timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r       record;
    dropped integer := 0;
BEGIN
    FOR r IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_class p ON p.oid = i.inhparent
          JOIN pg_namespace n ON n.oid = p.relnamespace
         WHERE n.nspname = 'solarx_raw'
           AND p.relname IN ('home_power_readings', 'solar_panel_readings', 'battery_readings')
           AND c.relname ~ '_[0-9]{8}$'
           AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= p_horizon
    LOOP
        EXECUTE format('DROP TABLE solarx_raw.%I', r.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;
