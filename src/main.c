/* solarx-stream: command-line dispatch. Wires the modules together; no business rules here. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

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
    "an applied file's checksum no longer matches the ledger.\n";

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
    "With migrate_on_start, pending migrations are applied first.\n"
    "\n"
    "Signals: SIGTERM/SIGINT write the last batch, commit and exit 0 (a second one exits\n"
    "at once); SIGHUP reloads log_level, flush_interval_ms and flush_max_readings.\n";

static const char status_usage[] =
    "usage: solarx-stream status [-c FILE]\n"
    "\n"
    "Prints, for every partition of the [topics], the next offset stored in PostgreSQL for\n"
    "[kafka] group.id, Kafka's high watermark and the lag, then a summary line\n"
    "\"group=… total_lag=N partitions=N last_flush=…\". Exit 0 when it could ask both,\n"
    "1 when PostgreSQL or Kafka could not be reached.\n";

struct cli {
    const char *command;
    const char *config_path;
};

/* Parses the options common to every command; returns 0, CLI_HELP_SHOWN, or an exit status. */
static int parse_common(int argc, char **argv, struct cli *cli, const char *help)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            cli->config_path = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return CLI_HELP_SHOWN;
        default:
            fprintf(stderr, "%s", help);
            return EX_USAGE;
        }
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
    return cfg;
}

static int command_migrate(const struct cli *cli)
{
    char err[1024];
    int applied = 0;
    struct config *cfg = load_config(cli);
    if (!cfg)
        return EX_CONFIG;
    PGconn *conn = db_connect_blocking(cfg, err, sizeof(err));
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
    int rc = parse_common(argc - 1, argv + 1, &cli, help);
    if (rc == CLI_HELP_SHOWN)
        return EX_OK;
    if (rc != 0)
        return rc;
    return run(&cli);
}
