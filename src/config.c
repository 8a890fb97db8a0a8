/* Configuration: INI through inih, SOLARX_<SECTION>_<KEY> environment overrides, *_file secrets,
 * and validation with errors that name the file, the line and the key. */
#include "solarx/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "solarx/db.h"

enum key_type { KEY_STRING, KEY_INT, KEY_BOOL, KEY_LOG_LEVEL };

/* Every known key of the fixed sections; [kafka] is open and handled apart. */
struct key_spec {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset; /* into struct config */
    long min, max; /* KEY_INT bounds */
};

#define STR(sec, key, field)                                                                       \
    {                                                                                              \
        sec, key, KEY_STRING, offsetof(struct config, field), 0, 0                                 \
    }
#define INT(sec, key, field, lo, hi)                                                               \
    {                                                                                              \
        sec, key, KEY_INT, offsetof(struct config, field), lo, hi                                  \
    }

static const struct key_spec key_specs[] = {
    STR("solarx", "source_timezone", source_timezone),
    INT("solarx", "default_home_id", default_home_id, 1, INT32_MAX),
    INT("solarx", "default_panel_id", default_panel_id, 1, INT32_MAX),
    INT("solarx", "window_minutes", window_minutes, 1, 60),
    INT("solarx", "flush_interval_ms", flush_interval_ms, 10, 600000),
    INT("solarx", "flush_max_readings", flush_max_readings, 100, 10000000),
    INT("solarx", "flush_max_bytes", flush_max_bytes, 1 << 20, 128 << 20),
    INT("solarx", "flush_max_windows", flush_max_windows, 16, 10000000),
    INT("solarx", "max_message_bytes", max_message_bytes, 1024, 64 << 20),
    INT("solarx", "max_future_seconds", max_future_seconds, 60, 315360000),
    INT("solarx", "stop_timeout_s", stop_timeout_s, 1, 3600),
    INT("solarx", "raw_retention_days", raw_retention_days, 1, 36500),
    INT("solarx", "window_cache_windows", window_cache_windows, 0, 10000000),
    INT("solarx", "flush_connections", flush_connections, 1, CONFIG_FLUSH_CONNECTIONS_MAX),
    STR("solarx", "http_listen", http_listen),
    STR("solarx", "appliances_file", appliances_file),
    STR("solarx", "panels_file", panels_file),
    STR("solarx", "raw_archive_dir", raw_archive_dir),
    INT("solarx", "progress_interval_ms", progress_interval_ms, 100, 3600000),
    STR("solarx", "migrations_dir", migrations_dir),
    {"solarx", "migrate_on_start", KEY_BOOL, offsetof(struct config, migrate_on_start), 0, 0},
    {"solarx", "log_level", KEY_LOG_LEVEL, offsetof(struct config, log_level), 0, 0},
    INT("solarx", "stall_timeout_s", stall_timeout_s, 1, 86400),
    STR("topics", "home", topic[READING_HOME]),
    STR("topics", "solar", topic[READING_SOLAR]),
    STR("topics", "battery", topic[READING_BATTERY]),
    STR("postgres", "conninfo", pg_conninfo),
    STR("postgres", "password_file", pg_password), /* replaced by the file's contents */
    /* Least privilege: the migrations' own connection, as the schemas' owner. */
    STR("postgres", "migrate_conninfo", pg_migrate_conninfo),
    STR("postgres", "migrate_password_file", pg_migrate_password), /* the file's contents */
};

#undef STR
#undef INT

_Static_assert(sizeof(key_specs) / sizeof(key_specs[0]) <= 64, "explicit_keys is 64 bits");

struct parse_state {
    struct config *cfg;
    const char *origin; /* "FILE:LINE" prefix source: the file path, or "environment" */
    FILE *file;
    int line;     /* lines read so far: the line inih is handling */
    bool at_line; /* errors name origin:line (the file), else just origin */
    char *err;
    size_t err_size;
    bool failed;
    rd_kafka_conf_t *kafka_probe; /* [kafka] keys are checked against librdkafka as they come */
    bool file_has_secret;         /* the INI file itself holds a password or a [kafka] secret */
};

static void fail(struct parse_state *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct parse_state *ps, const char *fmt, ...)
{
    if (ps->failed)
        return; /* the first error is the one the user needs */
    char detail[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (ps->at_line)
        snprintf(ps->err, ps->err_size, "config: %s:%d: %s", ps->origin, ps->line, detail);
    else
        snprintf(ps->err, ps->err_size, "config: %s: %s", ps->origin, detail);
    ps->failed = true;
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    if (!copy) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    return copy;
}

static void add_warning(struct config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_warning(struct config *cfg, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    char **grown = realloc(cfg->warnings, (cfg->warning_count + 1) * sizeof(*grown));
    if (!grown) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    cfg->warnings = grown;
    cfg->warnings[cfg->warning_count++] = xstrdup(text);
}

/* The warning libpq gives for a .pgpass anyone but its owner can read, for the open file f. */
static void warn_if_exposed(struct config *cfg, FILE *f, const char *path, const char *what)
{
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !(st.st_mode & (S_IRWXG | S_IRWXO)))
        return;
    add_warning(cfg,
                "%s \"%s\" has group or others access (mode %04o) and holds a secret; "
                "permissions should be u=rw (0600) or less",
                what, path, (unsigned)(st.st_mode & 07777));
}

/* Reads a secret file (what names the key it came from): its contents less one trailing newline.
 * NULL (and errno) on failure. A file others can read adds a warning to ps->cfg. */
static char *read_secret_file(struct parse_state *ps, const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    warn_if_exposed(ps->cfg, f, path, what);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    bool too_long = !feof(f);
    fclose(f);
    if (too_long) {
        errno = EFBIG;
        return NULL;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return xstrdup(buf);
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, true;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, true;
    }
    return false;
}

static void set_known_key(struct parse_state *ps, const struct key_spec *spec, const char *value)
{
    void *field = (char *)ps->cfg + spec->offset;
    ps->cfg->explicit_keys |= UINT64_C(1) << (spec - key_specs);

    switch (spec->type) {
    case KEY_STRING: {
        char **slot = field;
        char *copy;
        if (strcmp(spec->name, "password_file") == 0 ||
            strcmp(spec->name, "migrate_password_file") == 0) {
            char what[64];
            snprintf(what, sizeof(what), "[%s] %s", spec->section, spec->name);
            copy = read_secret_file(ps, value, what);
            if (!copy) {
                fail(ps, "[%s] %s: cannot read \"%s\": %s", spec->section, spec->name, value,
                     strerror(errno));
                return;
            }
        } else {
            copy = xstrdup(value);
        }
        free(*slot);
        *slot = copy;
        return;
    }
    case KEY_INT: {
        char *end;
        errno = 0;
        long n = strtol(value, &end, 10);
        if (errno || end == value || *end != '\0' || n < spec->min || n > spec->max) {
            fail(ps, "[%s] %s = \"%s\": expected an integer from %ld to %ld", spec->section,
                 spec->name, value, spec->min, spec->max);
            return;
        }
        *(int32_t *)field = (int32_t)n;
        return;
    }
    case KEY_BOOL:
        if (!parse_bool(value, field))
            fail(ps, "[%s] %s = \"%s\": expected true or false", spec->section, spec->name, value);
        return;
    case KEY_LOG_LEVEL:
        if (!config_log_level_parse(value, field))
            fail(ps, "[%s] %s = \"%s\": expected error, warn, info or debug", spec->section,
                 spec->name, value);
        return;
    }
}

/* librdkafka's own verdict on a [kafka] key, so a typo stops start-up at its line. */
static bool kafka_key_valid(struct parse_state *ps, const char *key, const char *value, bool secret)
{
    char err[512];
    if (!ps->kafka_probe)
        ps->kafka_probe = rd_kafka_conf_new();
    if (rd_kafka_conf_set(ps->kafka_probe, key, value, err, sizeof(err)) == RD_KAFKA_CONF_OK)
        return true;
    fail(ps, "[kafka] %s = %s: %s", key, secret ? "(secret)" : value, err);
    return false;
}

static void kafka_set(struct config *cfg, const char *key, const char *value, bool secret)
{
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (strcmp(cfg->kafka[i].key, key) == 0) {
            free(cfg->kafka[i].value);
            cfg->kafka[i].value = xstrdup(value);
            cfg->kafka[i].secret |= secret;
            return;
        }
    }
    struct config_kv *grown = realloc(cfg->kafka, (cfg->kafka_count + 1) * sizeof(*grown));
    if (!grown) {
        fputs("solarx-stream: out of memory\n", stderr);
        abort();
    }
    cfg->kafka = grown;
    cfg->kafka[cfg->kafka_count++] = (struct config_kv){xstrdup(key), xstrdup(value), secret};
}

static bool looks_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.oauthbearer");
}

/* [kafka] keys pass through; "X_file" means: the value of X is the contents of that file. */
static void set_kafka_key(struct parse_state *ps, const char *key, const char *value)
{
    size_t len = strlen(key);
    if (len > 5 && strcmp(key + len - 5, "_file") == 0) {
        char what[300];
        snprintf(what, sizeof(what), "[kafka] %s", key);
        char *secret = read_secret_file(ps, value, what);
        if (!secret) {
            fail(ps, "[kafka] %s: cannot read \"%s\": %s", key, value, strerror(errno));
            return;
        }
        char *target = xstrdup(key);
        target[len - 5] = '\0';
        if (kafka_key_valid(ps, target, secret, true))
            kafka_set(ps->cfg, target, secret, true);
        free(target);
        free(secret);
        return;
    }
    if (kafka_key_valid(ps, key, value, looks_secret(key)))
        kafka_set(ps->cfg, key, value, looks_secret(key));
}

static const struct key_spec *find_spec(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++)
        if (strcmp(key_specs[i].section, section) == 0 && strcmp(key_specs[i].name, name) == 0)
            return &key_specs[i];
    return NULL;
}

static bool section_known(const char *section)
{
    return strcmp(section, "solarx") == 0 || strcmp(section, "topics") == 0 ||
           strcmp(section, "postgres") == 0 || strcmp(section, "kafka") == 0;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *ps = user;

    if (!name)
        return 1; /* a section header alone */
    if (!section_known(section)) {
        fail(ps, "unknown section [%s] (expected solarx, topics, kafka or postgres)", section);
        return 0;
    }
    if (strcmp(section, "kafka") == 0) {
        size_t len = strlen(name);
        bool from_file = len > 5 && strcmp(name + len - 5, "_file") == 0;
        ps->file_has_secret |= !from_file && looks_secret(name);
        set_kafka_key(ps, name, value);
        return !ps->failed;
    }
    const struct key_spec *spec = find_spec(section, name);
    if (!spec) {
        fail(ps, "[%s] unknown key \"%s\"", section, name);
        return 0;
    }
    if (strcmp(section, "postgres") == 0 &&
        (strcmp(name, "conninfo") == 0 || strcmp(name, "migrate_conninfo") == 0))
        ps->file_has_secret |= db_conninfo_has_password(value);
    set_known_key(ps, spec, value);
    return !ps->failed;
}

/* inih calls this once per line: counting here gives the line the handler is looking at. */
static char *counting_reader(char *str, int num, void *stream)
{
    struct parse_state *ps = stream;
    char *got = fgets(str, num, ps->file);
    if (got)
        ps->line++;
    return got;
}

static void env_name(char *buf, size_t size, const char *section, const char *key)
{
    snprintf(buf, size, "SOLARX_%s_%s", section, key);
    for (char *p = buf; *p; p++)
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
}

static const char *env_lookup(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (char *const *e = envp; *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

static void apply_environment(struct parse_state *ps, char *const *envp)
{
    char name[256];

    ps->at_line = false;
    for (size_t i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]) && !ps->failed; i++) {
        env_name(name, sizeof(name), key_specs[i].section, key_specs[i].name);
        const char *value = env_lookup(envp, name);
        if (value) {
            ps->origin = name;
            set_known_key(ps, &key_specs[i], value);
        }
    }
    /* SOLARX_KAFKA_SASL_PASSWORD -> sasl.password; an existing key whose spelling maps to the same
     * variable is overridden in place (keeps any underscore librdkafka expects). */
    static const char prefix[] = "SOLARX_KAFKA_";
    for (char *const *e = envp; *e && !ps->failed; e++) {
        if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e + sizeof(prefix) - 1)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
        char key[256];
        const char *existing = NULL;
        char probe[256];
        for (size_t i = 0; i < ps->cfg->kafka_count; i++) {
            env_name(probe, sizeof(probe), "kafka", ps->cfg->kafka[i].key);
            if (strcmp(probe, name) == 0)
                existing = ps->cfg->kafka[i].key;
        }
        if (existing) {
            snprintf(key, sizeof(key), "%s", existing);
        } else {
            const char *rest = name + sizeof(prefix) - 1;
            size_t len = strlen(rest);
            bool is_file = len > 5 && strcmp(rest + len - 5, "_FILE") == 0;
            size_t n = 0;
            for (size_t i = 0; i < len - (is_file ? 5 : 0) && n < sizeof(key) - 6; i++)
                key[n++] = rest[i] == '_' ? '.' : (char)tolower((unsigned char)rest[i]);
            key[n] = '\0';
            if (is_file)
                strcat(key, "_file");
        }
        ps->origin = name;
        set_kafka_key(ps, key, eq + 1);
    }
}

static void set_defaults(struct config *cfg)
{
    cfg->source_timezone = xstrdup("UTC");
    cfg->default_home_id = 1;
    cfg->default_panel_id = 4;
    cfg->window_minutes = 15;
    cfg->flush_interval_ms = 1000;
    cfg->flush_max_readings = 50000;
    cfg->flush_max_bytes = 64 << 20;
    cfg->flush_max_windows = 4096;
    cfg->max_message_bytes = 1 << 20;
    cfg->max_future_seconds = 86400;
    cfg->stop_timeout_s = 30;
    cfg->raw_retention_days = 7;
    cfg->window_cache_windows = 4096;
    cfg->flush_connections = 3;
    cfg->http_listen = xstrdup("127.0.0.1:9187");
    cfg->appliances_file = xstrdup("/etc/solarx/home_appliances.json");
    cfg->panels_file = xstrdup("/etc/solarx/solar_panels.json");
    cfg->raw_archive_dir = xstrdup("");
    cfg->progress_interval_ms = 5000;
    cfg->migrate_on_start = false;
    cfg->migrations_dir = xstrdup(SOLARX_MIGRATIONS_DIR);
    cfg->log_level = CONFIG_LOG_INFO;
    cfg->stall_timeout_s = 300;
    cfg->topic[READING_HOME] = xstrdup("home_energy_consumption");
    cfg->topic[READING_SOLAR] = xstrdup("solar_energy_data");
    cfg->topic[READING_BATTERY] = xstrdup("battery_data");
    cfg->pg_conninfo = xstrdup("dbname=solarx");
}

static bool valid_zone_name(const char *name)
{
    if (strcmp(name, "UTC") == 0)
        return true;
    if (!*name || name[0] == '/' || strstr(name, ".."))
        return false;
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Checks that span keys; names the key but no line (the value may come from either source). */
static void validate(struct parse_state *ps)
{
    struct config *cfg = ps->cfg;
    ps->at_line = false;
    ps->origin = cfg->path;

    if (1440 % cfg->window_minutes != 0)
        fail(ps, "[solarx] window_minutes = %d: must divide a day (1440 minutes) evenly",
             cfg->window_minutes);
    else if (!valid_zone_name(cfg->source_timezone))
        fail(ps, "[solarx] source_timezone = \"%s\": not an IANA time zone known to this system",
             cfg->source_timezone);
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (!cfg->topic[k][0])
            fail(ps, "[topics] %s: a topic name is required", reading_kind_name(k));
        for (int j = 0; j < k; j++)
            if (strcmp(cfg->topic[k], cfg->topic[j]) == 0)
                fail(ps, "[topics] %s and %s name the same topic \"%s\"", reading_kind_name(j),
                     reading_kind_name(k), cfg->topic[k]);
    }
    if (!config_kafka_get(cfg, "bootstrap.servers"))
        kafka_set(cfg, "bootstrap.servers", "127.0.0.1:9092", false);
    if (!config_kafka_get(cfg, "group.id"))
        kafka_set(cfg, "group.id", "solarx-stream", false);
    if (!config_kafka_get(cfg, "auto.offset.reset"))
        kafka_set(cfg, "auto.offset.reset", "earliest", false);
    char conninfo_err[512];
    if (!db_conninfo_check(cfg->pg_conninfo, conninfo_err, sizeof(conninfo_err)))
        fail(ps, "[postgres] conninfo: %s", conninfo_err);
    if (cfg->pg_migrate_conninfo && cfg->pg_migrate_conninfo[0] &&
        !db_conninfo_check(cfg->pg_migrate_conninfo, conninfo_err, sizeof(conninfo_err)))
        fail(ps, "[postgres] migrate_conninfo: %s", conninfo_err);
    const char *auto_commit = config_kafka_get(cfg, "enable.auto.commit");
    bool on;
    if (auto_commit && parse_bool(auto_commit, &on) && on)
        fail(ps,
             "[kafka] enable.auto.commit = %s: offsets are committed by the service after each "
             "PostgreSQL transaction; remove the key",
             auto_commit);
}

struct config *config_load(const char *path, char *const *envp, char *errstr, size_t errstr_size)
{
    extern char **environ;
    struct config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        snprintf(errstr, errstr_size, "config: out of memory");
        return NULL;
    }
    set_defaults(cfg);
    cfg->path = xstrdup(path);

    struct parse_state ps = {.cfg = cfg, .origin = path, .err = errstr, .err_size = errstr_size};
    ps.file = fopen(path, "r");
    ps.at_line = true;
    if (!ps.file) {
        snprintf(errstr, errstr_size, "config: %s: %s", path, strerror(errno));
        goto fail;
    }
    int rc = ini_parse_stream(counting_reader, &ps, on_ini_entry, &ps);
    if (ps.file_has_secret)
        warn_if_exposed(cfg, ps.file, path, "configuration file");
    fclose(ps.file);
    ps.file = NULL;
    if (rc > 0 && !ps.failed) {
        ps.line = rc; /* the line inih could not parse */
        fail(&ps, "syntax error (expected [section] or key = value)");
    }
    if (rc < 0 && !ps.failed) {
        ps.at_line = false;
        fail(&ps, "cannot read the file");
    }
    if (ps.failed)
        goto fail;

    apply_environment(&ps, envp ? envp : environ);
    if (ps.failed)
        goto fail;
    validate(&ps);
    if (ps.failed)
        goto fail;
    if (ps.kafka_probe)
        rd_kafka_conf_destroy(ps.kafka_probe);
    return cfg;

fail:
    if (ps.kafka_probe)
        rd_kafka_conf_destroy(ps.kafka_probe);
    config_destroy(cfg);
    return NULL;
}

void config_destroy(struct config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++)
        if (key_specs[i].type == KEY_STRING)
            free(*(char **)((char *)cfg + key_specs[i].offset));
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
    }
    free(cfg->kafka);
    for (size_t i = 0; i < cfg->warning_count; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    free(cfg->path);
    free(cfg);
}

bool config_key_explicit(const struct config *cfg, const char *section, const char *key)
{
    const struct key_spec *spec = find_spec(section, key);
    return spec && (cfg->explicit_keys & (UINT64_C(1) << (spec - key_specs)));
}

const char *config_kafka_get(const struct config *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka[i].key, key) == 0)
            return cfg->kafka[i].value;
    return NULL;
}

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

const char *config_log_level_name(enum config_log_level level)
{
    return (unsigned)level < 4 ? log_level_names[level] : "info";
}

bool config_log_level_parse(const char *name, enum config_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, log_level_names[i]) == 0) {
            *out = (enum config_log_level)i;
            return true;
        }
    }
    return false;
}
