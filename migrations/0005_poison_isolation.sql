-- Poison isolation: raw day partitions for exactly the days that hold data, created race-safely,
-- and the size and digest of dead letters whose payload is kept only in part (too_large).

-- Creates the day partitions of the three raw tables for the given UTC days (never a range:
-- one reading years ahead must not create every day in between), those that do not exist yet.
-- Returns how many it created. Safe to call concurrently from several writers: creators of one
-- partition serialise on an advisory lock and re-check the catalogue with a fresh snapshot; a
-- creation that still collides (duplicate_table, or unique_violation on pg_class while the other
-- transaction commits) is caught in a sub-block and counts as existing.
CREATE FUNCTION solarx_raw.ensure_partitions_for_days(p_days date[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    d       date;
    t       text;
    created integer := 0;
    part    text;
BEGIN
    FOR d IN SELECT DISTINCT u FROM unnest(p_days) AS u WHERE u IS NOT NULL ORDER BY u LOOP
        FOREACH t IN ARRAY ARRAY['home_power_readings', 'solar_panel_readings', 'battery_readings'] LOOP
            part := t || '_' || to_char(d, 'YYYYMMDD');
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class c
                                    JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE n.nspname = 'solarx_raw' AND c.relname = part);
            PERFORM pg_advisory_xact_lock(hashtext('solarx_raw.' || part));
            -- A new statement: a new snapshot, which sees a creation committed while we waited.
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class c
                                    JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE n.nspname = 'solarx_raw' AND c.relname = part);
            BEGIN
                EXECUTE format('CREATE TABLE solarx_raw.%I PARTITION OF solarx_raw.%I '
                               'FOR VALUES FROM (%L) TO (%L)', part, t,
                               d::timestamp AT TIME ZONE 'UTC',
                               (d + 1)::timestamp AT TIME ZONE 'UTC');
                created := created + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL; -- another writer created it first: it exists, which is all we need
            END;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

COMMENT ON FUNCTION solarx_raw.ensure_day_partitions(timestamptz, timestamptz) IS
    'Superseded by ensure_partitions_for_days (0005): creates a whole range of days; unused.';

-- payload keeps the whole message, or only its first 64 KiB when it was too_large;
-- payload_bytes and payload_sha256 always describe the whole payload as consumed.
ALTER TABLE solarx_raw.dead_letters
    ADD COLUMN payload_bytes  bigint,
    ADD COLUMN payload_sha256 bytea CHECK (octet_length(payload_sha256) = 32);
