-- Fencing: the instance that owns a partition is the one that claimed it last. A claim (at every
-- partition assignment) increments the row's owner_epoch and returns where to resume; a flush
-- stores offsets only through solarx_meta.store_offsets, which refuses -- and so rolls the whole
-- flush back -- when the epoch it claimed under is no longer the row's. A partition claimed but
-- not yet written has a NULL next_offset.
ALTER TABLE solarx_meta.consumer_offsets
    ALTER COLUMN next_offset DROP NOT NULL,
    ADD COLUMN owner_epoch bigint NOT NULL DEFAULT 0 CHECK (owner_epoch >= 0),
    ADD COLUMN owner       text,
    ADD COLUMN claimed_at  timestamptz;

COMMENT ON COLUMN solarx_meta.consumer_offsets.next_offset IS
    'Next offset to consume; NULL while the partition is claimed but nothing was stored yet.';
COMMENT ON COLUMN solarx_meta.consumer_offsets.owner_epoch IS
    'Incremented by every claim; offsets move only under the current epoch (fencing).';
COMMENT ON COLUMN solarx_meta.consumer_offsets.owner IS
    'Who claimed the partition last (group.instance.id or host, and pid); for operators.';

-- Moves the stored offsets of a flush (never backwards), provided every partition is still held
-- under the epoch given for it. Otherwise raises SQLSTATE SXFEN ("fenced"), naming the
-- partitions, so that the flush's transaction rolls back. Rows are locked in key order, the
-- order claims use, so a claim and a flush serialise without deadlock: whichever commits first
-- wins, and a flush that waited for a claim sees the new epoch.
CREATE FUNCTION solarx_meta.store_offsets(p_group text, p_topics text[], p_partitions integer[],
                                          p_next bigint[], p_epochs bigint[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    fenced text;
    stored integer;
BEGIN
    PERFORM 1 FROM solarx_meta.consumer_offsets o
      WHERE o.consumer_group = p_group
        AND (o.topic, o."partition") IN (SELECT * FROM unnest(p_topics, p_partitions))
      ORDER BY o.topic, o."partition"
        FOR UPDATE;
    SELECT string_agg(format('%s/%s claimed under epoch %s, now %s', u.t, u.p, u.e,
                             coalesce(o.owner_epoch::text, 'unclaimed')),
                      ', ' ORDER BY u.t, u.p)
      INTO fenced
      FROM unnest(p_topics, p_partitions, p_epochs) AS u(t, p, e)
      LEFT JOIN solarx_meta.consumer_offsets o
             ON o.consumer_group = p_group AND o.topic = u.t AND o."partition" = u.p
     WHERE o.owner_epoch IS DISTINCT FROM u.e;
    IF fenced IS NOT NULL THEN
        RAISE EXCEPTION 'fenced: %', fenced
            USING ERRCODE = 'SXFEN',
                  HINT = 'this instance lost the partitions; its batch is dropped, not retried';
    END IF;
    UPDATE solarx_meta.consumer_offsets o
       SET next_offset = GREATEST(o.next_offset, u.n), updated_at = now()
      FROM unnest(p_topics, p_partitions, p_next) AS u(t, p, n)
     WHERE o.consumer_group = p_group AND o.topic = u.t AND o."partition" = u.p;
    GET DIAGNOSTICS stored = ROW_COUNT;
    RETURN stored;
END
$$;
COMMENT ON FUNCTION solarx_meta.store_offsets(text, text[], integer[], bigint[], bigint[]) IS
    'A flush''s offsets, under the epochs their partitions were claimed with; SQLSTATE SXFEN when fenced.';
