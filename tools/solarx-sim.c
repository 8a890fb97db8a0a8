/* solarx-sim: Solar-X-compatible producer and load generator. Drives the pure generator of
 * tools/sim/sim.c into Kafka (idempotent librdkafka producer) or into topic dump files. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <getopt.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "sim.h"

#define EX_OK 0
#define EX_FAIL 1
#define EX_USAGE 64

#define MAX_PASSTHROUGH 64

static const char usage_text[] =
    "Usage: solarx-sim [OPTIONS]\n"
    "Generate Solar-X telemetry (home consumption, solar generation, batteries) for N homes,\n"
    "one reading per device per second of event time, deterministically from a seed, and\n"
    "produce it to Kafka or write it to topic dump files.\n"
    "\n"
    "What to generate:\n"
    "  --homes N              number of homes, 1..100000 (default 1). With N > 1 every message\n"
    "                         carries \"home_id\" (1..N) and solar messages \"panel_id\" =\n"
    "                         home_id*10+4; with one home both are omitted (the service's\n"
    "                         defaults: home 1, panel 4)\n"
    "  --seed S               seed, unsigned 64-bit (default 1); same options, same bytes\n"
    "  --start \"YYYY-MM-DD HH:MM:SS\"\n"
    "                         event time of the first second, naive local time (default\n"
    "                         \"2025-02-14 00:00:00\"; with a paced --rate: the current local\n"
    "                         time, per TZ)\n"
    "  --minutes M | --hours H | --days D\n"
    "                         length of the stream in event time (default --minutes 60)\n"
    "  --appliances FILE      appliance table of the home-load model, in the format of\n"
    "                         config/home_appliances_consumption.json (default: built-in copy)\n"
    "  --battery-upgrade \"YYYY-MM-DD HH:MM:SS\"\n"
    "                         from this event time on, battery_1 of every home reports\n"
    "                         capacity_kwh 15 and max_output_w 5 instead of 12 and 3.33\n"
    "\n"
    "Faults (probabilities per message in [0, 1], deterministic under the seed):\n"
    "  --duplicates P         also emit an exact byte copy of the message 1..5 positions later\n"
    "  --disorder P           delay the message by 3..60 positions of its topic and home\n"
    "  --late P               hold the message back by --late-hours of event time (messages\n"
    "                         due after the last second are emitted at the end)\n"
    "  --late-hours H         how late, in hours, fractions allowed (default 1)\n"
    "  --malformed P          emit a broken message in addition to the good one (kinds rotate:\n"
    "                         truncated JSON, wrong type, negative energy, bad timestamp,\n"
    "                         missing field, not an object; battery also unknown status and\n"
    "                         bad battery key)\n"
    "\n"
    "Pace:\n"
    "  --rate max|realtime|F  max: as fast as possible (default); realtime: event seconds\n"
    "                         follow wall seconds; F: F event seconds per wall second\n"
    "\n"
    "Output (Kafka unless --output-dir):\n"
    "  --brokers LIST         bootstrap servers (default $SOLARX_KAFKA_BOOTSTRAP_SERVERS, else\n"
    "                         127.0.0.1:9092)\n"
    "  --topic-home NAME      default home_energy_consumption\n"
    "  --topic-solar NAME     default solar_energy_data\n"
    "  --topic-battery NAME   default battery_data\n"
    "  -X key=value           librdkafka producer property, applied after the defaults\n"
    "                         (enable.idempotence=true, linger.ms=20, compression.type=lz4,\n"
    "                         batch.num.messages=100000, batch.size=4000000); repeatable\n"
    "  --output-dir DIR       write DIR/<topic>.jsonl instead (created if missing, truncated),\n"
    "                         one message per line, as kafka-console-consumer prints them\n"
    "  --daily-files          with --output-dir: write Solar-X's daily dumps instead,\n"
    "                         DIR/kafka_log_<topic>_<YYYY-MM-DD>.log, split by the date of each\n"
    "                         message's reading (event time; a malformed one goes with its twin)\n"
    "Messages are keyed by home id as decimal text (\"1\").\n"
    "\n"
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "At the end one JSON summary line goes to stdout, counting per topic what was emitted:\n"
    "{\"homes\":..,\"seconds\":..,\"seed\":..,\"start\":..,\"messages\":{..},\"valid\":{..},\n"
    "\"duplicates\":{..},\"malformed\":{..},\"late\":{..},\"reordered\":{..},\"total\":..}\n"
    "(messages = valid + duplicates + malformed; late and reordered are parts of valid).\n"
    "Logs go to stderr. SIGINT/SIGTERM stop early: flush, summary with \"interrupted\":true.\n"
    "Exit status: 0 success, 1 a message failed to be delivered or written, 64 bad arguments.\n";

struct options {
    struct sim_config sim;
    double rate; /* event seconds per wall second; 0 = as fast as possible */
    bool start_given;
    const char *brokers;
    const char *topics[READING_KIND_COUNT];
    const char *passthrough[MAX_PASSTHROUGH];
    int passthrough_count;
    const char *output_dir;
    bool daily_files;
    const char *appliances_file;
};

struct output {
    /* Kafka */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt[READING_KIND_COUNT];
    uint64_t delivered;
    uint64_t failed;
    char first_error[256];
    /* files */
    FILE *files[READING_KIND_COUNT];
    char *file_names[READING_KIND_COUNT];
    /* --daily-files: one file per topic and day, opened as messages of that day come */
    const char *dir;
    struct daily_file *daily;
    size_t daily_count;
};

struct daily_file {
    enum reading_kind topic;
    int64_t day; /* event time / 86400 */
    FILE *file;
    char *name;
};

static volatile sig_atomic_t stop_signals;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_signals++;
}

static void log_line(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void log_line(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "solarx-sim: level=%s ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("solarx-sim: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    exit(EX_USAGE);
}

static int64_t parse_int(const char *opt, const char *text, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        usage_error("%s: expected an integer in %" PRId64 "..%" PRId64 ", got \"%s\"", opt, min,
                    max, text);
    return v;
}

static double parse_number(const char *opt, const char *text, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < min || v > max)
        usage_error("%s: expected a number in [%g, %g], got \"%s\"", opt, min, max, text);
    return v;
}

static int64_t now_local_event_time(void)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    return (int64_t)now + tm.tm_gmtoff;
}

enum long_option {
    OPT_HOMES = 256,
    OPT_SEED,
    OPT_START,
    OPT_MINUTES,
    OPT_HOURS,
    OPT_DAYS,
    OPT_RATE,
    OPT_BROKERS,
    OPT_TOPIC_HOME,
    OPT_TOPIC_SOLAR,
    OPT_TOPIC_BATTERY,
    OPT_OUTPUT_DIR,
    OPT_DUPLICATES,
    OPT_DISORDER,
    OPT_LATE,
    OPT_LATE_HOURS,
    OPT_MALFORMED,
    OPT_BATTERY_UPGRADE,
    OPT_APPLIANCES,
    OPT_VERSION,
    OPT_DAILY_FILES,
};

static void parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"homes", required_argument, NULL, OPT_HOMES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"start", required_argument, NULL, OPT_START},
        {"minutes", required_argument, NULL, OPT_MINUTES},
        {"hours", required_argument, NULL, OPT_HOURS},
        {"days", required_argument, NULL, OPT_DAYS},
        {"rate", required_argument, NULL, OPT_RATE},
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"topic-home", required_argument, NULL, OPT_TOPIC_HOME},
        {"topic-solar", required_argument, NULL, OPT_TOPIC_SOLAR},
        {"topic-battery", required_argument, NULL, OPT_TOPIC_BATTERY},
        {"output-dir", required_argument, NULL, OPT_OUTPUT_DIR},
        {"daily-files", no_argument, NULL, OPT_DAILY_FILES},
        {"duplicates", required_argument, NULL, OPT_DUPLICATES},
        {"disorder", required_argument, NULL, OPT_DISORDER},
        {"late", required_argument, NULL, OPT_LATE},
        {"late-hours", required_argument, NULL, OPT_LATE_HOURS},
        {"malformed", required_argument, NULL, OPT_MALFORMED},
        {"battery-upgrade", required_argument, NULL, OPT_BATTERY_UPGRADE},
        {"appliances", required_argument, NULL, OPT_APPLIANCES},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    int durations = 0;
    double late_hours = 1.0;
    bool brokers_given = false;

    o->sim.homes = 1;
    o->sim.seed = 1;
    o->sim.seconds = 3600;
    o->sim.battery_upgrade = INT64_MAX;
    if (sim_parse_time("2025-02-14 00:00:00", &o->sim.start) != 0)
        abort();
    o->topics[READING_HOME] = "home_energy_consumption";
    o->topics[READING_SOLAR] = "solar_energy_data";
    o->topics[READING_BATTERY] = "battery_data";
    o->brokers = getenv("SOLARX_KAFKA_BOOTSTRAP_SERVERS");
    if (o->brokers == NULL || *o->brokers == '\0')
        o->brokers = "127.0.0.1:9092";

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":hX:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage_text, stdout);
            exit(EX_OK);
        case OPT_VERSION:
            printf("solarx-sim %s\n", SOLARX_VERSION);
            exit(EX_OK);
        case OPT_HOMES:
            o->sim.homes = (int32_t)parse_int("--homes", optarg, 1, SIM_MAX_HOMES);
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-')
                usage_error("--seed: expected an unsigned 64-bit integer, got \"%s\"", optarg);
            o->sim.seed = v;
            break;
        }
        case OPT_START:
            if (sim_parse_time(optarg, &o->sim.start) != 0)
                usage_error("--start: expected \"YYYY-MM-DD HH:MM:SS\", got \"%s\"", optarg);
            o->start_given = true;
            break;
        case OPT_MINUTES:
            o->sim.seconds = 60 * parse_int("--minutes", optarg, 1, 60LL * 24 * 366 * 100);
            durations++;
            break;
        case OPT_HOURS:
            o->sim.seconds = 3600 * parse_int("--hours", optarg, 1, 24LL * 366 * 100);
            durations++;
            break;
        case OPT_DAYS:
            o->sim.seconds = 86400 * parse_int("--days", optarg, 1, 366LL * 100);
            durations++;
            break;
        case OPT_RATE:
            if (strcmp(optarg, "max") == 0)
                o->rate = 0;
            else if (strcmp(optarg, "realtime") == 0)
                o->rate = 1;
            else
                o->rate = parse_number("--rate (max, realtime or a factor)", optarg, 1e-3, 1e9);
            break;
        case OPT_BROKERS:
            o->brokers = optarg;
            brokers_given = true;
            break;
        case OPT_TOPIC_HOME:
        case OPT_TOPIC_SOLAR:
        case OPT_TOPIC_BATTERY:
            if (*optarg == '\0' || strchr(optarg, '/') != NULL)
                usage_error("topic names must be non-empty and contain no '/', got \"%s\"", optarg);
            o->topics[c == OPT_TOPIC_HOME    ? READING_HOME
                      : c == OPT_TOPIC_SOLAR ? READING_SOLAR
                                             : READING_BATTERY] = optarg;
            break;
        case 'X':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=')
                usage_error("-X: expected key=value, got \"%s\"", optarg);
            if (o->passthrough_count == MAX_PASSTHROUGH)
                usage_error("-X: at most %d properties", MAX_PASSTHROUGH);
            o->passthrough[o->passthrough_count++] = optarg;
            break;
        case OPT_DAILY_FILES:
            o->daily_files = true;
            break;
        case OPT_OUTPUT_DIR:
            if (*optarg == '\0')
                usage_error("--output-dir: empty path");
            o->output_dir = optarg;
            break;
        case OPT_DUPLICATES:
            o->sim.duplicates = parse_number("--duplicates", optarg, 0, 1);
            break;
        case OPT_DISORDER:
            o->sim.disorder = parse_number("--disorder", optarg, 0, 1);
            break;
        case OPT_LATE:
            o->sim.late = parse_number("--late", optarg, 0, 1);
            break;
        case OPT_LATE_HOURS:
            late_hours = parse_number("--late-hours", optarg, 1.0 / 3600, 24.0 * 366 * 100);
            break;
        case OPT_MALFORMED:
            o->sim.malformed = parse_number("--malformed", optarg, 0, 1);
            break;
        case OPT_BATTERY_UPGRADE:
            if (sim_parse_time(optarg, &o->sim.battery_upgrade) != 0)
                usage_error("--battery-upgrade: expected \"YYYY-MM-DD HH:MM:SS\", got \"%s\"",
                            optarg);
            break;
        case OPT_APPLIANCES:
            o->appliances_file = optarg;
            break;
        case ':':
            usage_error("%s needs a value", argv[optind - 1]);
        default:
            if (optopt != 0)
                usage_error("unknown option -%c", optopt);
            usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument \"%s\"", argv[optind]);
    if (durations > 1)
        usage_error("give only one of --minutes, --hours, --days");
    if (o->daily_files && o->output_dir == NULL)
        usage_error("--daily-files goes with --output-dir");
    if (o->output_dir != NULL && (brokers_given || o->passthrough_count > 0))
        usage_error("--output-dir writes files; it does not go with --brokers or -X");
    for (int i = 0; i < READING_KIND_COUNT; i++)
        for (int j = i + 1; j < READING_KIND_COUNT; j++)
            if (strcmp(o->topics[i], o->topics[j]) == 0)
                usage_error("the three topics must differ (\"%s\" twice)", o->topics[i]);
    o->sim.late_seconds = (int64_t)llround(late_hours * 3600);
    if (o->sim.late_seconds < 1)
        o->sim.late_seconds = 1;
    if (o->rate > 0 && !o->start_given)
        o->sim.start = now_local_event_time();
}

/* Loads an appliances JSON file ({"name": {"consumption": [min, max], "time": "H:MM-H:MM,.."}})
 * into a table; the names stay owned by *root, which the caller releases after the run. */
static int load_appliances(const char *path, json_t **root, struct sim_appliance **table,
                           size_t *count)
{
    json_error_t error;
    *root = json_load_file(path, 0, &error);
    if (*root == NULL) {
        log_line("error", "msg=\"cannot read appliances\" file=\"%s\" line=%d error=\"%s\"", path,
                 error.line, error.text);
        return -1;
    }
    if (!json_is_object(*root) || json_object_size(*root) == 0) {
        log_line("error", "msg=\"appliances must be a non-empty object\" file=\"%s\"", path);
        return -1;
    }
    *count = json_object_size(*root);
    *table = calloc(*count, sizeof(**table));
    if (*table == NULL)
        return -1;
    size_t i = 0;
    const char *name;
    json_t *value;
    json_object_foreach(*root, name, value)
    {
        struct sim_appliance *a = &(*table)[i++];
        json_t *range = json_object_get(value, "consumption");
        json_t *usage = json_object_get(value, "time");
        a->name = name;
        if (!json_is_array(range) || json_array_size(range) != 2 ||
            !json_is_number(json_array_get(range, 0)) ||
            !json_is_number(json_array_get(range, 1)) || !json_is_string(usage) ||
            sim_parse_usage_time(json_string_value(usage), a) != 0) {
            log_line("error", "msg=\"bad appliance\" file=\"%s\" appliance=\"%s\"", path, name);
            return -1;
        }
        double lo = json_number_value(json_array_get(range, 0));
        double hi = json_number_value(json_array_get(range, 1));
        if (!(lo >= 0 && hi >= lo && hi <= 1000000)) {
            log_line("error", "msg=\"bad consumption range\" file=\"%s\" appliance=\"%s\"", path,
                     name);
            return -1;
        }
        a->min_w = (int32_t)llround(lo);
        a->max_w = (int32_t)llround(hi);
    }
    return 0;
}

/* ---- Kafka ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct output *out = opaque;
    (void)rk;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        out->delivered++;
        return;
    }
    if (out->failed++ == 0)
        snprintf(out->first_error, sizeof(out->first_error), "%s: %s",
                 rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    char fatal[256];
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_line("error", "msg=\"fatal producer error\" error=\"%s\"", fatal);
        stop_signals += 2;
        return;
    }
    log_line("warn", "msg=\"kafka\" error=\"%s\"", reason);
}

static int kafka_open(const struct options *o, struct output *out)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *defaults[][2] = {
        {"bootstrap.servers", o->brokers},
        {"client.id", "solarx-sim"},
        {"enable.idempotence", "true"},
        {"linger.ms", "20"},
        {"batch.num.messages", "100000"},
        {"batch.size", "4000000"},
        {"compression.type", "lz4"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto conf_error;
    for (int i = 0; i < o->passthrough_count; i++) {
        char key[256];
        const char *eq = strchr(o->passthrough[i], '=');
        size_t n = (size_t)(eq - o->passthrough[i]);
        if (n >= sizeof(key)) {
            snprintf(errstr, sizeof(errstr), "property name too long");
            goto conf_error;
        }
        memcpy(key, o->passthrough[i], n);
        key[n] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            goto conf_error;
    }
    rd_kafka_conf_set_opaque(conf, out);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    out->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (out->rk == NULL) {
        rd_kafka_conf_destroy(conf); /* still ours: rd_kafka_new only takes it on success */
        log_line("error", "msg=\"cannot create producer\" error=\"%s\"", errstr);
        return -1;
    }
    conf = NULL; /* owned by out->rk now */
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        out->rkt[k] = rd_kafka_topic_new(out->rk, o->topics[k], NULL);
        if (out->rkt[k] == NULL) {
            log_line("error", "msg=\"cannot create topic handle\" topic=\"%s\" error=\"%s\"",
                     o->topics[k], rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    return 0;
conf_error:
    rd_kafka_conf_destroy(conf);
    fprintf(stderr, "solarx-sim: -X/--brokers: %s\n", errstr);
    exit(EX_USAGE);
}

static int kafka_produce(struct output *out, const struct sim_message *msg)
{
    char key[16];
    int keylen = snprintf(key, sizeof(key), "%" PRId32, msg->home_id);
    for (;;) {
        if (rd_kafka_produce(out->rkt[msg->topic], RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                             (void *)msg->payload, msg->len, key, (size_t)keylen, NULL) == 0)
            return 0;
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            log_line("error", "msg=\"produce failed\" topic=\"%s\" error=\"%s\"",
                     rd_kafka_topic_name(out->rkt[msg->topic]), rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(out->rk, 100); /* serve delivery reports until there is room */
        if (stop_signals > 1)
            return -1;
    }
}

static void kafka_close(struct output *out)
{
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (out->rkt[k] != NULL)
            rd_kafka_topic_destroy(out->rkt[k]);
    if (out->rk != NULL)
        rd_kafka_destroy(out->rk);
}

/* Waits for every queued message to be delivered or to fail (bounded by message.timeout.ms);
 * a second stop signal gives up. Returns the number of messages still queued. */
static int kafka_drain(struct output *out)
{
    while (rd_kafka_outq_len(out->rk) > 0 && stop_signals < 2)
        (void)rd_kafka_flush(out->rk, 500);
    return rd_kafka_outq_len(out->rk);
}

/* ---- files ---- */

static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -1;
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static int files_open(const struct options *o, struct output *out)
{
    if (make_dirs(o->output_dir) != 0) {
        log_line("error", "msg=\"cannot create output directory\" dir=\"%s\" error=\"%s\"",
                 o->output_dir, strerror(errno));
        return -1;
    }
    out->dir = o->output_dir;
    if (o->daily_files) {
        out->daily = calloc(1, sizeof(*out->daily)); /* marks the mode; grown as days come */
        return out->daily != NULL ? 0 : -1;
    }
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (asprintf(&out->file_names[k], "%s/%s.jsonl", o->output_dir, o->topics[k]) < 0) {
            out->file_names[k] = NULL;
            return -1;
        }
        out->files[k] = fopen(out->file_names[k], "w");
        if (out->files[k] == NULL) {
            log_line("error", "msg=\"cannot open\" file=\"%s\" error=\"%s\"", out->file_names[k],
                     strerror(errno));
            return -1;
        }
        setvbuf(out->files[k], NULL, _IOFBF, 1 << 20);
    }
    return 0;
}

/* The daily dump of the message's topic and event day, opened (truncated) at its first use. */
static struct daily_file *daily_file_for(const struct options *o, struct output *out,
                                         const struct sim_message *msg)
{
    int64_t day = msg->reading_time / 86400;
    for (size_t i = out->daily_count; i-- > 0;)
        if (out->daily[i].topic == msg->topic && out->daily[i].day == day)
            return &out->daily[i];
    struct daily_file *grown = realloc(out->daily, (out->daily_count + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    out->daily = grown;
    struct daily_file *d = &out->daily[out->daily_count];
    char date[SIM_TIME_TEXT_SIZE];
    sim_format_time(day * 86400, date);
    date[10] = '\0';
    if (asprintf(&d->name, "%s/kafka_log_%s_%s.log", out->dir, o->topics[msg->topic], date) < 0)
        return NULL;
    d->file = fopen(d->name, "w");
    if (d->file == NULL) {
        log_line("error", "msg=\"cannot open\" file=\"%s\" error=\"%s\"", d->name, strerror(errno));
        free(d->name);
        return NULL;
    }
    setvbuf(d->file, NULL, _IOFBF, 1 << 18);
    d->topic = msg->topic;
    d->day = day;
    out->daily_count++;
    return d;
}

static int files_write(const struct options *o, struct output *out, const struct sim_message *msg)
{
    FILE *f = out->files[msg->topic];
    const char *name = out->file_names[msg->topic];
    if (out->daily != NULL) {
        struct daily_file *d = daily_file_for(o, out, msg);
        if (d == NULL)
            return -1;
        f = d->file;
        name = d->name;
    }
    if (fwrite(msg->payload, 1, msg->len, f) != msg->len || putc('\n', f) == EOF) {
        log_line("error", "msg=\"write failed\" file=\"%s\" error=\"%s\"", name, strerror(errno));
        return -1;
    }
    return 0;
}

static int files_flush(struct output *out)
{
    int rc = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        if (out->files[k] != NULL && fflush(out->files[k]) != 0)
            rc = -1;
    for (size_t i = 0; i < out->daily_count; i++)
        if (fflush(out->daily[i].file) != 0)
            rc = -1;
    return rc;
}

/* Closes the files; returns -1 if any write-back failed. */
static int files_close(struct output *out)
{
    int rc = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++) {
        if (out->files[k] != NULL && fclose(out->files[k]) != 0) {
            log_line("error", "msg=\"write failed\" file=\"%s\" error=\"%s\"", out->file_names[k],
                     strerror(errno));
            rc = -1;
        }
        free(out->file_names[k]);
    }
    for (size_t i = 0; i < out->daily_count; i++) {
        if (fclose(out->daily[i].file) != 0) {
            log_line("error", "msg=\"write failed\" file=\"%s\" error=\"%s\"", out->daily[i].name,
                     strerror(errno));
            rc = -1;
        }
        free(out->daily[i].name);
    }
    free(out->daily);
    out->daily = NULL;
    out->daily_count = 0;
    return rc;
}

/* ---- pacing ---- */

static double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits until wall time t0 + step / rate, serving Kafka callbacks meanwhile. */
static void pace(const struct options *o, struct output *out, double t0, int64_t step)
{
    double target = t0 + (double)step / o->rate;
    for (;;) {
        double left = target - monotonic_seconds();
        if (left <= 0 || stop_signals > 0)
            return;
        if (out->rk != NULL) {
            rd_kafka_poll(out->rk, (int)(left * 1000) + 1);
        } else {
            (void)files_flush(out); /* readers tailing the files see each second */
            struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct output out = {0};
    struct sim *sim = NULL;
    json_t *appliances_root = NULL;
    struct sim_appliance *appliances = NULL;
    char errstr[512];
    int status = EX_FAIL;
    bool ok = true;

    parse_options(argc, argv, &o);
    if (o.appliances_file != NULL) {
        if (load_appliances(o.appliances_file, &appliances_root, &appliances,
                            &o.sim.appliance_count) != 0) {
            status = EX_USAGE;
            goto out;
        }
        o.sim.appliances = appliances;
    }
    if (sim_new(&o.sim, &sim, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "solarx-sim: %s\n", errstr);
        status = EX_USAGE;
        goto out;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (o.output_dir != NULL ? files_open(&o, &out) != 0 : kafka_open(&o, &out) != 0)
        goto out;

    char start_text[SIM_TIME_TEXT_SIZE];
    log_line("info",
             "msg=\"start\" homes=%" PRId32 " seconds=%" PRId64 " seed=%" PRIu64
             " start=\"%s\" output=\"%s\"",
             o.sim.homes, o.sim.seconds, o.sim.seed, sim_format_time(o.sim.start, start_text),
             o.output_dir != NULL ? o.output_dir : o.brokers);

    double t0 = monotonic_seconds();
    int64_t paced_step = -1;
    uint64_t count = 0;
    struct sim_message msg;
    while (stop_signals == 0 && sim_next(sim, &msg)) {
        if (o.rate > 0 && msg.step != paced_step) {
            pace(&o, &out, t0, msg.step);
            paced_step = msg.step;
        }
        if ((out.rk != NULL ? kafka_produce(&out, &msg) : files_write(&o, &out, &msg)) != 0) {
            ok = false;
            break;
        }
        if (out.rk != NULL && (++count & 1023) == 0)
            rd_kafka_poll(out.rk, 0);
    }
    if (sim_failed(sim)) {
        log_line("error", "msg=\"generator ran out of memory\"");
        ok = false;
    }
    double generated = monotonic_seconds() - t0;

    if (out.rk != NULL) {
        int left = kafka_drain(&out);
        if (left > 0) {
            log_line("error", "msg=\"gave up waiting for deliveries\" undelivered=%d", left);
            ok = false;
        }
        if (out.failed > 0) {
            log_line("error", "msg=\"delivery failed\" failed=%" PRIu64 " first_error=\"%s\"",
                     out.failed, out.first_error);
            ok = false;
        }
    } else if (files_close(&out) != 0) {
        ok = false;
    }
    out.dir = NULL;
    memset(out.files, 0, sizeof(out.files));
    memset(out.file_names, 0, sizeof(out.file_names));
    double elapsed = monotonic_seconds() - t0;

    char summary[2048];
    int n = sim_summary_json(sim, o.topics, summary, sizeof(summary) - 32);
    if (n < 0) {
        log_line("error", "msg=\"summary too long\"");
        goto out;
    }
    if (stop_signals > 0)
        strcpy(summary + n - 1, ",\"interrupted\":true}");
    printf("%s\n", summary);
    fflush(stdout);

    uint64_t total = 0;
    for (int k = 0; k < READING_KIND_COUNT; k++)
        total += sim_stats(sim)->messages[k];
    log_line(ok ? "info" : "error",
             "msg=\"done\" messages=%" PRIu64 " generated_s=%.3f elapsed_s=%.3f rate=%.0f/s%s",
             total, generated, elapsed, elapsed > 0 ? (double)total / elapsed : 0.0,
             out.rk != NULL ? " (delivered)" : "");
    status = ok ? EX_OK : EX_FAIL;
out:
    kafka_close(&out);
    (void)files_close(&out);
    sim_destroy(sim);
    free(appliances);
    json_decref(appliances_root);
    return status;
}
