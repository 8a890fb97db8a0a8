-- The three schemas and the service's bookkeeping. The ledger table
-- solarx_meta.schema_migrations is created by `solarx-stream migrate` itself,
-- before the first file runs.
CREATE SCHEMA IF NOT EXISTS solarx_raw;
CREATE SCHEMA IF NOT EXISTS solarx_wh;
CREATE SCHEMA IF NOT EXISTS solarx_meta;

-- Where consumption resumes: written in the same transaction as the merges
-- the offsets cover, and only then committed to Kafka.
CREATE TABLE solarx_meta.consumer_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    "partition"    integer     NOT NULL CHECK ("partition" >= 0),
    next_offset    bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, "partition")
);
COMMENT ON TABLE solarx_meta.consumer_offsets IS
    'Next offset to consume per group/topic/partition; the source of truth for where to resume.';
