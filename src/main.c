/* solarx-stream: command-line dispatch. Wires the modules together; no business rules here. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "solarx/backfill.h"
#include "solarx/clock.h"
#include "solarx/config.h"
#include "solarx/db.h"
#include "solarx/log.h"
#include "solarx/migrate.h"
#include "solarx/service.h"
#include "solarx/status.h"

static const char usage_text[] =
    "usage: solarx-stream COMMAND [-c FILE] [OPTIONS]\n"
    "\n"
    "Consumes the Solar-X Kafka topics into a PostgreSQL warehouse.\n"
    "\n"
    "Commands:\n"
    "  run        the service: consume the topics and keep the warehouse until SIGTERM\n"
    "  migrate    apply pending migrations from [solarx] migrations_dir, then exit\n"
    "  status     offsets stored in PostgreSQL against Kafka's high watermarks, lag\n"
    "  replay     re-read a range of the topics (own assignment, no group commits), exit\n"
    "  ingest     load topic dump files and directories of them (Solar-X's daily dumps), exit\n"
    "  version    print the version\n"
    "\n"
    "Options (every command):\n"
    "  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
    "  -h, --help          this text; `solarx-stream COMMAND --help` for a command's own\n"
    "\n"
    "Every configuration key can be overridden as SOLARX_<SECTION>_<KEY> in the environment;\n"
    "PostgreSQL's PG* variables apply as usual.\n"
    "Exit status: 0 success, 1 failure, 64 bad arguments, 78 bad configuration.\n";

static const char migrate_usage[] =
    "usage: solarx-stream migrate [-c FILE]\n"
    "\n"
    "Applies the numbered SQL files of [solarx] migrations_dir that the ledger\n"
    "solarx_meta.schema_migrations does not list yet, in order, each in its own\n"
    "transaction. A second run applies nothing. Stops without changing anything when\n"
    "an applied file's checksum no longer matches the ledger.\n"
    "Connects with [postgres] migrate_conninfo (and migrate_password_file) when set, else\n"
    "with conninfo: a role that owns the solarx schemas or is a member of their owner\n"
    "(solarx_owner); the runtime role (solarx_app) is refused before anything changes.\n";

/* parse_common's "help was printed: exit 0". */
#define CLI_HELP_SHOWN (-1)

static const char run_usage[] =
    "usage: solarx-stream run [-c FILE]\n"
    "\n"
    "Joins the consumer group [kafka] group.id on the [topics], decodes every message\n"
    "(undecodable ones go to solarx_raw.dead_letters), windows the readings and, every\n"
    "flush_interval_ms or flush_max_readings, writes raw rows, window facts, dead letters\n"
    "and offsets in one PostgreSQL transaction; Kafka offsets are committed after it.\n"
    "Partitions resume at the offsets stored in PostgreSQL.\n"
    "With migrate_on_start, pending migrations are applied first, over a connection of\n"
    "their own with [postgres] migrate_conninfo when set.\n"
    "\n"
    "Signals: SIGTERM/SIGINT write the last batch, commit and exit 0 (a second one exits\n"
    "at once); SIGHUP reloads log_level, flush_interval_ms, flush_max_readings,\n"
    "flush_max_bytes, flush_max_windows and the appliance and panel registries; other\n"
    "keys need a restart.\n";

static const char status_usage[] =
    "usage: solarx-stream status [-c FILE]\n"
    "\n"
    "Prints, for every partition of the [topics], the next offset stored in PostgreSQL for\n"
    "[kafka] group.id, Kafka's high watermark and the lag, then a summary line\n"
    "\"group=… total_lag=N partitions=N last_flush=…\". Exit 0 when it could ask both,\n"
    "1 when PostgreSQL or Kafka could not be reached.\n";

static const char replay_usage[] =
    "usage: solarx-stream replay [-c FILE] (--from-beginning | --from-offset N |\n"
    "                            --from-time TIME) [--topic NAME] [--partition N]...\n"
    "\n"
    "Reads the chosen partitions (default: every partition of the three [topics]) from the\n"
    "start given up to their high watermarks as they are when it starts, writes them through\n"
    "the same transaction as the service, and exits. It assigns partitions itself, under the\n"
    "group name \"<group.id>.replay\", and stores or commits no offsets: the service's group is\n"
    "not disturbed. Readings already in the warehouse change nothing; missing ones are restored.\n"
    "Progress (messages against the high watermarks): a live line on a terminal, else\n"
    "event=progress lines every [solarx] progress_interval_ms.\n"
    "  --topic NAME      one topic: a [topics] name, or home, solar or battery\n"
    "  --partition N     only partition N (repeatable)\n"
    "  --from-time TIME  the first message at or after TIME (Kafka message time), given as\n"
    "                    \"YYYY-MM-DD HH:MM:SS\" (UTC) or ISO 8601 with an offset\n";

static const char ingest_usage[] =
    "usage: solarx-stream ingest [-c FILE] [--topic NAME] (FILE | DIR)...\n"
    "\n"
    "Loads topic dump files -- one JSON message per line, as kafka-console-consumer writes\n"
    "them -- through the same transaction as the service, and exits. A file's topic comes from\n"
    "its name: kafka_log_<topic>_<YYYY-MM-DD>.log (Solar-X's daily dumps) or <topic>.jsonl,\n"
    "either optionally gzip'd (.gz), <topic> one of the [topics] names. --topic NAME (a\n"
    "[topics] name, or home, solar or battery) is the topic of the files named on the command\n"
    "line whose name gives none. A directory stands for the dump-named files directly in it\n"
    "(not below; other files are skipped and logged). Files are read in a stable order: by\n"
    "date (undated first), topic, path. Undecodable lines become dead letters with the file as\n"
    "source and the line number as offset. Loading files again changes nothing.\n"
    "Progress: a live line on a terminal, else event=progress lines every\n"
    "[solarx] progress_interval_ms.\n";

#define CLI_MAX_PARTITIONS 256

struct cli {
    const char *command;
    const char *config_path;
    bool backfill; /* accepts --topic; replay also takes --from-* and --partition */
    bool takes_files;
    const char *topic;
    int from_count; /* --from-* given */
    enum backfill_from from;
    int64_t from_offset;
    const char *from_time;
    int32_t partitions[CLI_MAX_PARTITIONS];
    size_t partition_count;
    char **files;
    size_t file_count;
};

/* Parses the options common to every command; returns 0, CLI_HELP_SHOWN, or an exit status. */
static bool parse_int64(const char *text, int64_t min, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min)
        return false;
    *out = v;
    return true;
}

/* Options of every command, and of the backfill commands where they apply. */
static int parse_options(int argc, char **argv, struct cli *cli, const char *help)
{
    enum { OPT_BEGINNING = 1000, OPT_OFFSET, OPT_TIME };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"from-beginning", no_argument, NULL, OPT_BEGINNING},
        {"from-offset", required_argument, NULL, OPT_OFFSET},
        {"from-time", required_argument, NULL, OPT_TIME},
        {NULL, 0, NULL, 0},
    };
    bool replay = strcmp(cli->command, "replay") == 0;
    int opt;
    int64_t n;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:ht:p:", options, NULL)) != -1) {
        bool allowed =
            opt == 'c' || opt == 'h' || (opt == 't' && cli->backfill) || (opt != '?' && replay);
        if (!allowed) {
            fprintf(stderr, "solarx-stream %s: option %s does not apply here\n\n%s", cli->command,
                    argv[optind - 1], help);
            return EX_USAGE;
        }
        switch (opt) {
        case 'c':
            cli->config_path = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return CLI_HELP_SHOWN;
        case 't':
            cli->topic = optarg;
            break;
        case 'p':
            if (!parse_int64(optarg, 0, &n) || n > INT32_MAX ||
                cli->partition_count == CLI_MAX_PARTITIONS) {
                fprintf(stderr,
                        "solarx-stream replay: --partition %s: expected a partition "
                        "number\n",
                        optarg);
                return EX_USAGE;
            }
            cli->partitions[cli->partition_count++] = (int32_t)n;
            break;
        case OPT_BEGINNING:
            cli->from = BACKFILL_FROM_BEGINNING;
            cli->from_count++;
            break;
        case OPT_OFFSET:
            if (!parse_int64(optarg, 0, &cli->from_offset)) {
                fprintf(stderr, "solarx-stream replay: --from-offset %s: expected an offset\n",
                        optarg);
                return EX_USAGE;
            }
            cli->from = BACKFILL_FROM_OFFSET;
            cli->from_count++;
            break;
        case OPT_TIME:
            cli->from_time = optarg;
            cli->from = BACKFILL_FROM_TIMESTAMP;
            cli->from_count++;
            break;
        default:
            fprintf(stderr, "%s", help);
            return EX_USAGE;
        }
    }
    if (replay && cli->from_count != 1) {
        fprintf(stderr,
                "solarx-stream replay: give exactly one of --from-beginning, "
                "--from-offset, --from-time\n\n%s",
                help);
        return EX_USAGE;
    }
    if (cli->takes_files) {
        cli->files = argv + optind;
        cli->file_count = (size_t)(argc - optind);
        if (cli->file_count == 0) {
            fprintf(stderr, "solarx-stream %s: no file given\n\n%s", cli->command, help);
            return EX_USAGE;
        }
        return 0;
    }
    if (optind < argc) {
        fprintf(stderr, "solarx-stream %s: unexpected argument \"%s\"\n", cli->command,
                argv[optind]);
        return EX_USAGE;
    }
    return 0;
}

static struct config *load_config(const struct cli *cli)
{
    char err[1024];
    struct config *cfg = config_load(cli->config_path, NULL, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "solarx-stream: %s\n", err);
        return NULL;
    }
    log_set_level(cfg->log_level);
    char quoted[1100];
    for (size_t i = 0; i < cfg->warning_count; i++)
        log_warn("event=config_warning msg=%s",
                 log_quote(cfg->warnings[i], quoted, sizeof(quoted)));
    return cfg;
}

static int command_migrate(const struct cli *cli)
{
    char err[1024];
    int applied = 0;
    struct config *cfg = load_config(cli);
    if (!cfg)
        return EX_CONFIG;
    PGconn *conn = db_connect_migrator(cfg, err, sizeof(err));
    int status = EXIT_FAILURE;
    if (!conn) {
        fprintf(stderr, "solarx-stream: %s\n", err);
        goto out;
    }
    if (migrate_run(conn, cfg->migrations_dir, &applied, err, sizeof(err)) < 0) {
        fprintf(stderr, "solarx-stream: %s\n", err);
        goto out;
    }
    log_info("event=migrate_done applied=%d dir=%s", applied, cfg->migrations_dir);
    status = EXIT_SUCCESS;
out:
    PQfinish(conn);
    config_destroy(cfg);
    return status;
}

static int command_run(const struct cli *cli)
{
    char err[1024] = "";
    struct config *cfg = load_config(cli);
    if (!cfg)
        return EX_CONFIG;
    int rc = service_run(cfg, err, sizeof(err)); /* owns cfg */
    if (rc != 0 && err[0])
        fprintf(stderr, "solarx-stream: %s\n", err);
    return rc;
}

/* The backfills apply pending migrations first when migrate_on_start says so, like `run`.
 * Returns 0, or -1 with the reason printed on stderr and left in err. */
static int migrate_if_configured(const struct config *cfg, char *err, size_t err_size)
{
    int applied = 0;
    if (!cfg->migrate_on_start)
        return 0;
    PGconn *conn = db_connect_migrator(cfg, err, err_size);
    int rc = conn ? migrate_run(conn, cfg->migrations_dir, &applied, err, err_size) : -1;
    PQfinish(conn);
    if (rc < 0)
        fprintf(stderr, "solarx-stream: %s\n", err);
    return rc;
}

/* Logs the outcome of a backfill: "<what>_done" with its counts, or "<what>_failed" with the
 * stage that failed, the reason (already on stderr) and what had been written before it. The
 * counts are only read when the backfill ran (it zeroes them first). Returns the exit status. */
static int finish_backfill(const char *what, bool migrated, int rc, const struct backfill_result *r,
                           const char *err)
{
    char quoted[1100];
    if (!migrated) {
        log_error("event=%s_failed stage=migrate msg=%s", what,
                  log_quote(err, quoted, sizeof(quoted)));
        return EXIT_FAILURE;
    }
    if (rc < 0) {
        fprintf(stderr, "solarx-stream: %s\n", err);
        log_error("event=%s_failed stage=%s msg=%s messages=%llu flushes=%llu", what, what,
                  log_quote(err, quoted, sizeof(quoted)), (unsigned long long)r->messages,
                  (unsigned long long)r->flushes);
        return EXIT_FAILURE;
    }
    log_info("event=%s_done messages=%llu readings=%llu merged=%llu duplicates=%llu "
             "dead_letters=%llu flushes=%llu",
             what, (unsigned long long)r->messages, (unsigned long long)r->readings,
             (unsigned long long)r->merged, (unsigned long long)r->duplicates,
             (unsigned long long)r->dead_letters, (unsigned long long)r->flushes);
    return EXIT_SUCCESS;
}

static int command_ingest(const struct cli *cli)
{
    char err[1024] = "";
    struct backfill_result result = {0};
    struct config *cfg = load_config(cli);
    if (!cfg)
        return EX_CONFIG;
    bool migrated = migrate_if_configured(cfg, err, sizeof(err)) == 0;
    int rc = migrated ? backfill_ingest(cfg, cli->files, cli->file_count, cli->topic, &result, err,
                                        sizeof(err))
                      : -1;
    int status = finish_backfill("ingest", migrated, rc, &result, err);
    config_destroy(cfg);
    return status;
}

static int command_replay(const struct cli *cli)
{
    char err[1024] = "";
    struct backfill_result result = {0};
    struct backfill_replay_options opt = {
        .from = cli->from,
        .offset = cli->from_offset,
        .topic = cli->topic,
        .partitions = cli->partition_count ? cli->partitions : NULL,
        .partition_count = cli->partition_count,
    };
    if (cli->from == BACKFILL_FROM_TIMESTAMP) {
        struct clock_zone *utc = clock_zone_new("UTC", err, sizeof(err));
        int64_t epoch = 0;
        bool ok = utc && clock_parse_timestamp(utc, cli->from_time, &epoch, err, sizeof(err));
        clock_zone_destroy(utc);
        if (!ok) {
            fprintf(stderr, "solarx-stream replay: --from-time %s: %s\n", cli->from_time, err);
            return EX_USAGE;
        }
        opt.timestamp_ms = epoch * 1000;
    }
    struct config *cfg = load_config(cli);
    if (!cfg)
        return EX_CONFIG;
    bool migrated = migrate_if_configured(cfg, err, sizeof(err)) == 0;
    int rc = migrated ? backfill_replay(cfg, &opt, &result, err, sizeof(err)) : -1;
    int status = finish_backfill("replay", migrated, rc, &result, err);
    config_destroy(cfg);
    return status;
}

static int command_status(const struct cli *cli)
{
    char err[1024];
    long long lag = 0;
    struct config *cfg = load_config(cli);
    if (!cfg)
        return EX_CONFIG;
    int rc = status_report(cfg, stdout, &lag, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "solarx-stream: %s\n", err);
    config_destroy(cfg);
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    struct cli cli = {.config_path = CONFIG_DEFAULT_PATH};

    if (argc < 2) {
        fputs(usage_text, stderr);
        return EX_USAGE;
    }
    cli.command = argv[1];
    if (strcmp(cli.command, "-h") == 0 || strcmp(cli.command, "--help") == 0 ||
        strcmp(cli.command, "help") == 0) {
        fputs(usage_text, stdout);
        return EX_OK;
    }
    if (strcmp(cli.command, "version") == 0 || strcmp(cli.command, "--version") == 0) {
        printf("solarx-stream %s\n", SOLARX_VERSION);
        return EX_OK;
    }

    const char *help = NULL;
    int (*run)(const struct cli *) = NULL;
    if (strcmp(cli.command, "run") == 0) {
        help = run_usage;
        run = command_run;
    } else if (strcmp(cli.command, "replay") == 0) {
        help = replay_usage;
        run = command_replay;
        cli.backfill = true;
    } else if (strcmp(cli.command, "ingest") == 0) {
        help = ingest_usage;
        run = command_ingest;
        cli.backfill = true;
        cli.takes_files = true;
    } else if (strcmp(cli.command, "status") == 0) {
        help = status_usage;
        run = command_status;
    } else if (strcmp(cli.command, "migrate") == 0) {
        help = migrate_usage;
        run = command_migrate;
    } else {
        fprintf(stderr, "solarx-stream: unknown command \"%s\"\n\n%s", cli.command, usage_text);
        return EX_USAGE;
    }
    int rc = parse_options(argc - 1, argv + 1, &cli, help);
    if (rc == CLI_HELP_SHOWN)
        return EX_OK;
    if (rc != 0)
        return rc;
    return run(&cli);
}
