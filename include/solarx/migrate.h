/* The migrations ledger: numbered SQL files in migrations/, applied in order, each once, each in
 * its own transaction, with a SHA-256 checksum per file that must never change afterwards. */
#ifndef SOLARX_MIGRATE_H
#define SOLARX_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "solarx/config.h"

#define MIGRATE_CHECKSUM_SIZE 65 /* hex SHA-256 + NUL */

struct migration {
    int version; /* the NNNN of NNNN_name.sql */
    char *name;  /* "name" */
    char *path;  /* full path of the file */
    char *sql;   /* its contents */
    char checksum[MIGRATE_CHECKSUM_SIZE];
};

struct migration_set {
    struct migration *items; /* sorted by version, versions unique */
    size_t count;
};

/* A ledger row: what was applied. */
struct migration_applied {
    int version;
    const char *name;
    const char *checksum;
};

/* Reads every *.sql file of dir (names must be NNNN_name.sql, versions unique) into out, sorted.
 * Returns 0, or -1 with errstr naming the file at fault. Free with migrate_set_free. */
int migrate_scan_dir(const char *dir, struct migration_set *out, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));
void migrate_set_free(struct migration_set *set);

/* Hex SHA-256 of len bytes of data into out. */
void migrate_checksum(const void *data, size_t len, char out[MIGRATE_CHECKSUM_SIZE]);

/* Compares the ledger with the files. Returns the index in files of the first migration to apply
 * (files->count when none is pending), or -1 with errstr when an applied migration's checksum
 * differs from its file, or a ledger entry's file is missing while a later file is pending. */
long migrate_plan(const struct migration_set *files, const struct migration_applied *applied,
                  size_t applied_count, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* What migrate_run learns about the role it connected as, before it changes anything. */
struct migrate_privileges {
    const char *role;     /* current_user */
    const char *database; /* current_database() */
    bool can_create;      /* CREATE on the database (CREATE SCHEMA [IF NOT EXISTS] needs it) */
    const char *foreign;  /* "solarx_meta owned by solarx_owner, ...": existing solarx schemas
                             whose owner the role is not a member of; NULL or "" when none */
};

/* Least privilege: true when a role with p may run migrations (it owns the solarx schemas or is a
 * member of their owner, and may create schemas in the database); otherwise false with errstr
 * naming the role, what it lacks, and [postgres] migrate_conninfo. Pure. */
bool migrate_privileges_ok(const struct migrate_privileges *p, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Applies every pending migration of dir on conn (blocking; used before the service is READY).
 * Serialised against concurrent runs with an advisory lock. *applied_out gets how many ran.
 * Refuses, before changing anything, a role that migrate_privileges_ok refuses. Each migration
 * runs as the owner of solarx_meta (SET LOCAL ROLE when the login is a member of it), so what it
 * creates belongs to the schemas' owner. Returns 0, or -1 with errstr. */
int migrate_run(PGconn *conn, const char *dir, int *applied_out, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* migrate_on_start: connects as the migration role (db_connect_migrator) and applies every
 * pending migration of cfg->migrations_dir (migrate_run), before the service reports READY.
 * PostgreSQL not up yet is waited for, with the session's reconnect backoff
 * (event=postgres_unavailable); blocks until then. Returns 0 (event=migrate_done), or -1 with
 * errstr when migrate_run fails. */
int migrate_at_start(const struct config *cfg, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

#endif
