/* The service's configuration: INI file, then SOLARX_<SECTION>_<KEY> environment overrides,
 * then validation. A struct, never globals: a reload parses a new one and swaps. */
#ifndef SOLARX_CONFIG_H
#define SOLARX_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "solarx/reading.h"

#define CONFIG_DEFAULT_PATH "/etc/solarx/solarx-stream.conf"

/* One librdkafka property of the [kafka] section, passed on unchanged. */
struct config_kv {
    char *key;
    char *value;
    bool secret; /* came from a *_file key or names a password: never logged */
};

enum config_log_level { CONFIG_LOG_ERROR, CONFIG_LOG_WARN, CONFIG_LOG_INFO, CONFIG_LOG_DEBUG };

/* [solarx] flush_connections' upper bound (flush.h: FLUSH_LANES_MAX raw lanes and its own). */
#define CONFIG_FLUSH_CONNECTIONS_MAX 8

struct config {
    char *path; /* the file it was read from */

    /* [solarx] */
    char *source_timezone;
    int32_t default_home_id;
    int32_t default_panel_id;
    int32_t window_minutes;
    int32_t flush_interval_ms;
    int32_t flush_max_readings; /* size bound of one flush */
    int32_t flush_max_bytes;    /* and its bound in bytes (payloads kept + readings) */
    int32_t flush_max_windows;  /* and in distinct windows (fact rows) it touches */
    int32_t max_message_bytes;  /* larger messages are too_large dead letters, not decoded */
    int32_t max_future_seconds; /* readings further ahead of the wall clock: future_timestamp */
    int32_t stop_timeout_s;     /* SIGTERM: longest wait for the last flush before giving up */
    int32_t raw_retention_days;
    int32_t window_cache_windows; /* windows whose fact rows a flusher keeps in memory; 0 off */
    int32_t flush_connections;    /* PostgreSQL connections a flush writes on: its own + raw lanes,
                                     at most CONFIG_FLUSH_CONNECTIONS_MAX */
    char *http_listen;            /* "host:port"; empty disables the endpoint */
    char *appliances_file;        /* "" means none; see config_key_explicit for a missing file */
    char *panels_file;
    char *raw_archive_dir; /* raw day partitions are archived here before retention; "" off */
    int32_t progress_interval_ms; /* event=progress lines of ingest/replay off a terminal */
    bool migrate_on_start;
    char *migrations_dir; /* the numbered *.sql files */
    enum config_log_level log_level;
    int32_t stall_timeout_s; /* /healthz: no progress this long while lagging is unhealthy */

    /* [topics], indexed by enum reading_kind */
    char *topic[READING_KIND_COUNT];

    /* [kafka] */
    struct config_kv *kafka;
    size_t kafka_count;

    /* [postgres] */
    char *pg_conninfo;
    char *pg_password; /* from password_file, or NULL; secret */
    /* Least privilege: `migrate` and migrate_on_start connect with these (a login that owns the
     * schemas or is a member of their owner); NULL or empty: pg_conninfo and pg_password. */
    char *pg_migrate_conninfo;
    char *pg_migrate_password; /* from migrate_password_file, or NULL; secret */

    uint64_t explicit_keys; /* bit i: key_specs[i] was set by the file or the environment */

    /* What the caller should log at start, one sentence each (never a secret): a secret file, or
     * a configuration file holding a secret, that group or others can read. */
    char **warnings;
    size_t warning_count;
};

/* Reads path (which must exist), applies environment overrides from envp (NULL means the process
 * environment) and validates. Returns a new config, or NULL with a one-line reason naming the file,
 * line and key in errstr (`config: /etc/x.conf:12: [solarx] unknown key "flush_ms"`). Problems
 * that do not stop start-up are in cfg->warnings for the caller to log. */
struct config *config_load(const char *path, char *const *envp, char *errstr, size_t errstr_size);

void config_destroy(struct config *cfg);

/* True when [section] key was set by the file or the environment, false when it holds its
 * compiled-in default (or is not a known key). */
bool config_key_explicit(const struct config *cfg, const char *section, const char *key);

/* Value of a [kafka] key, or NULL. */
const char *config_kafka_get(const struct config *cfg, const char *key);

/* Name of a log level ("info"), and the reverse; returns false for an unknown name. */
const char *config_log_level_name(enum config_log_level level);
bool config_log_level_parse(const char *name, enum config_log_level *out);

#endif
