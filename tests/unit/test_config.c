/* Unit tests of src/config.c: defaults, the example file, environment overrides, secrets and
 * every error path with the file, line and key it must name. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "solarx/config.h"

static char tmp_path[64];

/* Writes text to a fresh temporary file and returns its path (valid until the next call). */
static const char *write_conf(const char *text)
{
    strcpy(tmp_path, "/tmp/solarx-config-XXXXXX");
    int fd = mkstemp(tmp_path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return tmp_path;
}

static char *no_env[] = {NULL};

static struct config *load_ok(const char *text, char **envp)
{
    char err[512] = "";
    struct config *cfg = config_load(write_conf(text), envp ? envp : no_env, err, sizeof(err));
    cr_assert_not_null(cfg, "unexpected error: %s", err);
    unlink(tmp_path);
    return cfg;
}

/* Loads text expecting failure; the message must contain every fragment given. */
static void load_fails(const char *text, char **envp, const char *frag1, const char *frag2)
{
    char err[512] = "";
    struct config *cfg = config_load(write_conf(text), envp ? envp : no_env, err, sizeof(err));
    cr_assert_null(cfg, "loaded although it should fail with \"%s\"", frag1);
    cr_assert(strstr(err, frag1), "error \"%s\" lacks \"%s\"", err, frag1);
    if (frag2)
        cr_assert(strstr(err, frag2), "error \"%s\" lacks \"%s\"", err, frag2);
    cr_assert(strstr(err, tmp_path) || strstr(err, "SOLARX_"), "error \"%s\" names no origin", err);
    unlink(tmp_path);
}

Test(config, defaults_from_an_empty_file)
{
    struct config *cfg = load_ok("", NULL);
    cr_assert_str_eq(cfg->source_timezone, "UTC");
    cr_assert_eq(cfg->default_home_id, 1);
    cr_assert_eq(cfg->default_panel_id, 4);
    cr_assert_eq(cfg->window_minutes, 15);
    cr_assert_eq(cfg->flush_interval_ms, 1000);
    cr_assert_eq(cfg->raw_retention_days, 7);
    cr_assert_str_eq(cfg->http_listen, "127.0.0.1:9187");
    cr_assert_str_eq(cfg->topic[READING_HOME], "home_energy_consumption");
    cr_assert_str_eq(cfg->topic[READING_SOLAR], "solar_energy_data");
    cr_assert_str_eq(cfg->topic[READING_BATTERY], "battery_data");
    cr_assert_str_eq(config_kafka_get(cfg, "bootstrap.servers"), "127.0.0.1:9092");
    cr_assert_str_eq(config_kafka_get(cfg, "group.id"), "solarx-stream");
    cr_assert_str_eq(config_kafka_get(cfg, "auto.offset.reset"), "earliest");
    cr_assert_str_eq(cfg->pg_conninfo, "dbname=solarx");
    cr_assert_null(cfg->pg_password);
    cr_assert_eq(cfg->log_level, CONFIG_LOG_INFO);
    cr_assert_eq(cfg->stall_timeout_s, 300);
    config_destroy(cfg);
}

Test(config, the_shipped_example_file_loads)
{
    char err[512] = "";
    struct config *cfg =
        config_load(SOLARX_SOURCE_DIR "/config/solarx-stream.conf", no_env, err, sizeof(err));
    cr_assert_not_null(cfg, "%s", err);
    cr_assert(cfg->migrate_on_start);
    cr_assert_str_eq(cfg->appliances_file, "/etc/solarx/home_appliances.json");
    config_destroy(cfg);
}

Test(config, values_and_inline_comments)
{
    struct config *cfg = load_ok("[solarx]\n"
                                 "source_timezone = Europe/Berlin ; comment\n"
                                 "window_minutes = 5\n"
                                 "log_level = DEBUG\n"
                                 "migrate_on_start = yes\n"
                                 "[topics]\nhome = h\nsolar = s\nbattery = b\n"
                                 "[kafka]\nbootstrap.servers = k1:9092,k2:9092\n"
                                 "socket.keepalive.enable = true\n"
                                 "[postgres]\nconninfo = host=db dbname=w\n",
                                 NULL);
    cr_assert_str_eq(cfg->source_timezone, "Europe/Berlin");
    cr_assert_eq(cfg->window_minutes, 5);
    cr_assert_eq(cfg->log_level, CONFIG_LOG_DEBUG);
    cr_assert(cfg->migrate_on_start);
    cr_assert_str_eq(cfg->topic[READING_HOME], "h");
    cr_assert_str_eq(config_kafka_get(cfg, "bootstrap.servers"), "k1:9092,k2:9092");
    cr_assert_str_eq(config_kafka_get(cfg, "socket.keepalive.enable"), "true");
    cr_assert_str_eq(cfg->pg_conninfo, "host=db dbname=w");
    config_destroy(cfg);
}

Test(config, environment_overrides_every_section)
{
    char *env[] = {"SOLARX_SOLARX_FLUSH_INTERVAL_MS=250",
                   "SOLARX_TOPICS_HOME=homes",
                   "SOLARX_KAFKA_BOOTSTRAP_SERVERS=10.0.0.1:9092",
                   "SOLARX_KAFKA_ENABLE_IDEMPOTENCE=true",
                   "SOLARX_POSTGRES_CONNINFO=dbname=other",
                   "SOLARX_RUN_DIR=/tmp/not-a-config-key",
                   "PATH=/bin",
                   NULL};
    struct config *cfg =
        load_ok("[solarx]\nflush_interval_ms = 900\n[kafka]\nbootstrap.servers = a:1\n", env);
    cr_assert_eq(cfg->flush_interval_ms, 250);
    cr_assert_str_eq(cfg->topic[READING_HOME], "homes");
    cr_assert_str_eq(config_kafka_get(cfg, "bootstrap.servers"), "10.0.0.1:9092");
    cr_assert_str_eq(config_kafka_get(cfg, "enable.idempotence"), "true");
    cr_assert_str_eq(cfg->pg_conninfo, "dbname=other");
    config_destroy(cfg);
}

Test(config, secrets_come_from_files)
{
    char secret_path[] = "/tmp/solarx-secret-XXXXXX";
    int fd = mkstemp(secret_path);
    cr_assert(write(fd, "s3cr3t\n", 7) == 7);
    close(fd);
    char conf[512];
    snprintf(conf, sizeof(conf),
             "[kafka]\nsasl.password_file = %s\n[postgres]\npassword_file = %s\n", secret_path,
             secret_path);
    struct config *cfg = load_ok(conf, NULL);
    cr_assert_str_eq(config_kafka_get(cfg, "sasl.password"), "s3cr3t");
    cr_assert_null(config_kafka_get(cfg, "sasl.password_file"));
    cr_assert_str_eq(cfg->pg_password, "s3cr3t");
    bool marked = false;
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka[i].key, "sasl.password") == 0)
            marked = cfg->kafka[i].secret;
    cr_assert(marked, "a password from a file must be marked secret");
    config_destroy(cfg);

    char env_file[300];
    snprintf(env_file, sizeof(env_file), "SOLARX_KAFKA_SSL_KEY_PASSWORD_FILE=%s", secret_path);
    char *env[] = {env_file, NULL};
    cfg = load_ok("", env);
    cr_assert_str_eq(config_kafka_get(cfg, "ssl.key.password"), "s3cr3t");
    config_destroy(cfg);
    unlink(secret_path);
}

/* Writes a secret file with the given mode; returns its path in path (a mkstemp template). */
static void write_secret(char *path, mode_t mode)
{
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert(write(fd, "s3cr3t\n", 7) == 7);
    close(fd);
    cr_assert(chmod(path, mode) == 0);
}

/* The warning of cfg that names path, or NULL. */
static const char *warning_about(const struct config *cfg, const char *path)
{
    for (size_t i = 0; i < cfg->warning_count; i++)
        if (strstr(cfg->warnings[i], path))
            return cfg->warnings[i];
    return NULL;
}

Test(config, secret_files_others_can_read_are_warned_about)
{
    char pg_path[] = "/tmp/solarx-secret-XXXXXX", kafka_path[] = "/tmp/solarx-secret-XXXXXX";
    write_secret(pg_path, 0644);
    write_secret(kafka_path, 0640);
    char conf[512];
    snprintf(conf, sizeof(conf),
             "[kafka]\nssl.key.password_file = %s\n[postgres]\npassword_file = %s\n", kafka_path,
             pg_path);
    struct config *cfg = load_ok(conf, NULL);
    const char *pg = warning_about(cfg, pg_path), *kafka = warning_about(cfg, kafka_path);
    cr_assert_not_null(pg, "no warning names %s", pg_path);
    cr_assert(strstr(pg, "0644") && strstr(pg, "password_file"), "warning: %s", pg);
    cr_assert_not_null(kafka, "no warning names %s", kafka_path);
    cr_assert(strstr(kafka, "0640") && strstr(kafka, "ssl.key.password_file"), "warning: %s",
              kafka);
    for (size_t i = 0; i < cfg->warning_count; i++)
        cr_assert_null(strstr(cfg->warnings[i], "s3cr3t"), "a warning shows the secret");
    config_destroy(cfg);

    cr_assert(chmod(pg_path, 0600) == 0 && chmod(kafka_path, 0400) == 0);
    cfg = load_ok(conf, NULL);
    cr_assert_eq(cfg->warning_count, 0, "unexpected warning: %s",
                 cfg->warning_count ? cfg->warnings[0] : "");
    config_destroy(cfg);
    unlink(pg_path);
    unlink(kafka_path);
}

/* The configuration file itself is warned about only when it holds a secret inline. */
static size_t warnings_for_file(const char *text, mode_t mode)
{
    char err[512] = "";
    const char *path = write_conf(text);
    cr_assert(chmod(path, mode) == 0);
    struct config *cfg = config_load(path, no_env, err, sizeof(err));
    cr_assert_not_null(cfg, "unexpected error: %s", err);
    size_t n = warning_about(cfg, path) ? 1 : 0;
    config_destroy(cfg);
    unlink(path);
    return n;
}

Test(config, a_config_file_holding_a_secret_others_can_read_is_warned_about)
{
    const char *pg_inline = "[postgres]\nconninfo = host=db user=solarx password=s3cr3t\n";
    const char *pg_uri = "[postgres]\nconninfo = postgresql://solarx:s3cr3t@db/solarx\n";
    const char *kafka_inline = "[kafka]\nsasl.password = s3cr3t\n";
    const char *no_secret = "[postgres]\nconninfo = host=db user=solarx dbname=solarx\n";
    cr_assert_eq(warnings_for_file(pg_inline, 0644), 1);
    cr_assert_eq(warnings_for_file(pg_uri, 0604), 1);
    cr_assert_eq(warnings_for_file(kafka_inline, 0640), 1);
    cr_assert_eq(warnings_for_file(pg_inline, 0600), 0);
    cr_assert_eq(warnings_for_file(kafka_inline, 0600), 0);
    cr_assert_eq(warnings_for_file(no_secret, 0644), 0);
}

Test(config, an_unparsable_conninfo_is_refused_without_quoting_a_password)
{
    load_fails("[postgres]\nconninfo = host=db bogus\n", NULL, "[postgres] conninfo",
               "missing \"=\" after \"bogus\"");
    char err[512] = "";
    const char *path = write_conf("[postgres]\nconninfo = postgresql://u:s3cr3t%zz@db/x\n");
    cr_assert_null(config_load(path, no_env, err, sizeof(err)));
    cr_assert(strstr(err, "[postgres] conninfo"), "error: %s", err);
    cr_assert_null(strstr(err, "s3cr3t"), "the error quotes the password: %s", err);
    unlink(path);
}

Test(config, missing_file_is_named)
{
    char err[256];
    cr_assert_null(config_load("/nonexistent/solarx.conf", no_env, err, sizeof(err)));
    cr_assert(strstr(err, "/nonexistent/solarx.conf"));
    cr_assert(strstr(err, "No such file"));
}

Test(config, syntax_error_names_the_line)
{
    load_fails("[solarx]\nwindow_minutes = 15\nthis line has no equals sign\n", NULL,
               ":3:", "syntax error");
}

Test(config, unknown_section_names_the_line)
{
    load_fails("[solarx]\n\n[kafak]\nbootstrap.servers = x\n", NULL,
               ":4:", "unknown section [kafak]");
}

Test(config, unknown_key_names_line_and_key)
{
    load_fails("[solarx]\nflush_ms = 10\n", NULL, ":2:", "unknown key \"flush_ms\"");
}

Test(config, non_numeric_integer)
{
    load_fails("[solarx]\n\n\nwindow_minutes = fifteen\n", NULL,
               ":4:", "window_minutes = \"fifteen\"");
}

Test(config, integer_out_of_range)
{
    load_fails("[solarx]\nflush_interval_ms = 5\n", NULL, ":2:", "from 10 to 600000");
    load_fails("[solarx]\ndefault_home_id = 0\n", NULL, ":2:", "default_home_id");
    load_fails("[solarx]\nwindow_minutes = 99999999999999\n", NULL, ":2:", "window_minutes");
}

Test(config, bad_boolean)
{
    load_fails("[solarx]\nmigrate_on_start = maybe\n", NULL, ":2:", "expected true or false");
}

Test(config, bad_log_level)
{
    load_fails("[solarx]\nlog_level = loud\n", NULL, ":2:", "log_level = \"loud\"");
}

Test(config, window_must_divide_a_day)
{
    load_fails("[solarx]\nwindow_minutes = 7\n", NULL, "window_minutes = 7", "divide a day");
}

Test(config, unknown_time_zone)
{
    load_fails("[solarx]\nsource_timezone = Mars/Olympus\n", NULL, "Mars/Olympus", "IANA");
    load_fails("[solarx]\nsource_timezone = ../../etc/passwd\n", NULL, "source_timezone", NULL);
}

Test(config, topics_must_be_distinct_and_present)
{
    load_fails("[topics]\nhome = same\nsolar = same\n", NULL, "name the same topic \"same\"", NULL);
    load_fails("[topics]\nbattery =\n", NULL, "[topics] battery", "required");
}

Test(config, auto_commit_is_refused)
{
    load_fails("[kafka]\nenable.auto.commit = true\n", NULL, "enable.auto.commit",
               "remove the key");
}

Test(config, unreadable_secret_file)
{
    load_fails("[postgres]\npassword_file = /nonexistent/pw\n", NULL, ":2:", "/nonexistent/pw");
    load_fails("[kafka]\n\nsasl.password_file = /nonexistent/kpw\n", NULL,
               ":3:", "/nonexistent/kpw");
}

Test(config, unknown_kafka_property_names_the_line)
{
    load_fails("[kafka]\nbootstrap.servers = a:1\nbootstrap.server = a:1\n", NULL,
               ":3:", "No such configuration property");
    load_fails("[kafka]\nsession.timeout.ms = soon\n", NULL, ":2:", "session.timeout.ms");
}

Test(config, unknown_kafka_property_from_the_environment)
{
    char *env[] = {"SOLARX_KAFKA_BOGUS_THING=1", NULL};
    load_fails("", env, "SOLARX_KAFKA_BOGUS_THING", "bogus.thing");
}

Test(config, bad_environment_value_names_the_variable)
{
    char *env[] = {"SOLARX_SOLARX_WINDOW_MINUTES=0", NULL};
    load_fails("", env, "SOLARX_SOLARX_WINDOW_MINUTES", "window_minutes = \"0\"");
}

Test(config, log_level_names_round_trip)
{
    enum config_log_level level;
    for (int i = CONFIG_LOG_ERROR; i <= CONFIG_LOG_DEBUG; i++) {
        cr_assert(config_log_level_parse(config_log_level_name(i), &level));
        cr_assert_eq((int)level, i);
    }
    cr_assert_not(config_log_level_parse("verbose", &level));
}

Test(config, knows_which_keys_were_set_explicitly)
{
    char *env[] = {"SOLARX_SOLARX_PANELS_FILE=/srv/panels.json", NULL};
    struct config *cfg = load_ok("[solarx]\nappliances_file = /etc/solarx/home_appliances.json\n"
                                 "raw_archive_dir = /var/lib/solarx/archive\n",
                                 env);
    /* Set to its default value, but in the file: explicit all the same. */
    cr_expect(config_key_explicit(cfg, "solarx", "appliances_file"));
    cr_expect(config_key_explicit(cfg, "solarx", "panels_file"));
    cr_expect(config_key_explicit(cfg, "solarx", "raw_archive_dir"));
    cr_expect(!config_key_explicit(cfg, "solarx", "window_minutes"));
    cr_expect(!config_key_explicit(cfg, "solarx", "no_such_key"));
    cr_expect_str_eq(cfg->raw_archive_dir, "/var/lib/solarx/archive");
    cr_expect_eq(cfg->progress_interval_ms, 5000);
    config_destroy(cfg);

    cfg = load_ok("[solarx]\n", NULL);
    cr_expect(!config_key_explicit(cfg, "solarx", "appliances_file"));
    cr_expect_str_eq(cfg->raw_archive_dir, "");
    config_destroy(cfg);
}

Test(config, poison_limits_have_defaults_bounds_and_overrides)
{
    struct config *cfg = load_ok("", NULL);
    cr_assert_eq(cfg->flush_max_bytes, 64 << 20);
    cr_assert_eq(cfg->max_message_bytes, 1048576);
    cr_assert_eq(cfg->max_future_seconds, 86400);
    cr_assert_eq(cfg->stop_timeout_s, 30);
    config_destroy(cfg);
    char *env[] = {"SOLARX_SOLARX_STOP_TIMEOUT_S=5", NULL};
    cfg = load_ok("[solarx]\nflush_max_bytes = 1048576\nmax_message_bytes = 524288\n"
                  "max_future_seconds = 3600\n",
                  env);
    cr_assert_eq(cfg->flush_max_bytes, 1048576);
    cr_assert_eq(cfg->max_message_bytes, 524288);
    cr_assert_eq(cfg->max_future_seconds, 3600);
    cr_assert_eq(cfg->stop_timeout_s, 5);
    config_destroy(cfg);
    load_fails("[solarx]\nflush_max_bytes = 1073741824\n", NULL,
               "flush_max_bytes = \"1073741824\": expected an integer from 1048576 to 134217728",
               NULL);
    load_fails("[solarx]\nstop_timeout_s = 0\n", NULL, "stop_timeout_s", NULL);
}

Test(config, window_cache_windows_has_a_default_a_bound_and_zero_turns_it_off)
{
    struct config *cfg = load_ok("", NULL);
    cr_assert_eq(cfg->window_cache_windows, 4096);
    config_destroy(cfg);
    cfg = load_ok("[solarx]\nwindow_cache_windows = 0\n", NULL);
    cr_assert_eq(cfg->window_cache_windows, 0);
    config_destroy(cfg);
    char *env[] = {"SOLARX_SOLARX_WINDOW_CACHE_WINDOWS=50000", NULL};
    cfg = load_ok("", env);
    cr_assert_eq(cfg->window_cache_windows, 50000);
    config_destroy(cfg);
    load_fails("[solarx]\nwindow_cache_windows = -1\n", NULL, "window_cache_windows",
               "from 0 to 10000000");
}

Test(config, flush_connections_has_a_default_bounds_and_an_override)
{
    struct config *cfg = load_ok("", NULL);
    cr_assert_eq(cfg->flush_connections, 3);
    config_destroy(cfg);
    cfg = load_ok("[solarx]\nflush_connections = 1\n", NULL);
    cr_assert_eq(cfg->flush_connections, 1);
    config_destroy(cfg);
    char *env[] = {"SOLARX_SOLARX_FLUSH_CONNECTIONS=4", NULL};
    cfg = load_ok("", env);
    cr_assert_eq(cfg->flush_connections, 4);
    config_destroy(cfg);
    load_fails("[solarx]\nflush_connections = 0\n", NULL, "flush_connections", "from 1 to 8");
    load_fails("[solarx]\nflush_connections = 9\n", NULL, "flush_connections", "from 1 to 8");
}

Test(config, flush_max_windows_has_a_default_bounds_and_an_override)
{
    struct config *cfg = load_ok("", NULL);
    cr_assert_eq(cfg->flush_max_windows, 4096);
    config_destroy(cfg);
    cfg = load_ok("[solarx]\nflush_max_windows = 500\n", NULL);
    cr_assert_eq(cfg->flush_max_windows, 500);
    config_destroy(cfg);
    char *env[] = {"SOLARX_SOLARX_FLUSH_MAX_WINDOWS=64", NULL};
    cfg = load_ok("[solarx]\nflush_max_windows = 500\n", env);
    cr_assert_eq(cfg->flush_max_windows, 64, "the environment wins over the file");
    config_destroy(cfg);
    load_fails("[solarx]\nflush_max_windows = 8\n", NULL,
               "flush_max_windows = \"8\": expected an integer from 16 to 10000000", NULL);
}
