/* Migrations: scan the directory, plan against the ledger, apply each pending file in its own
 * transaction and record it with its checksum; at the service's start, once PostgreSQL is up. */
#include "solarx/migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "solarx/db.h"
#include "solarx/db_session.h"
#include "solarx/log.h"

/* Advisory lock key that names "the migration lock" in this database. */
#define MIGRATION_LOCK_KEY "8313042137196397"

void migrate_checksum(const void *data, size_t len, char out[MIGRATE_CHECKSUM_SIZE])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < digest_len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    out[64] = '\0';
}

static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[8192];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    if (!buf && !(buf = calloc(1, 1)))
        return NULL;
    buf[len] = '\0';
    *len_out = len;
    return buf;
}

/* "0003_warehouse.sql" -> 3 and "warehouse"; false when the name is not of that form. */
static bool parse_file_name(const char *file, int *version, char **name)
{
    size_t len = strlen(file);
    if (len < 10 || strcmp(file + len - 4, ".sql") != 0)
        return false;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)file[i]))
            return false;
        v = v * 10 + (file[i] - '0');
    }
    if (file[4] != '_' || v == 0)
        return false;
    for (const char *p = file + 5; p < file + len - 4; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    *version = v;
    *name = strndup(file + 5, len - 9);
    return *name != NULL;
}

static int compare_version(const void *a, const void *b)
{
    const struct migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

int migrate_scan_dir(const char *dir, struct migration_set *out, char *errstr, size_t errstr_size)
{
    struct migration_set set = {0};
    size_t cap = 0;
    int rc = -1;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(errstr, errstr_size, "migrate: %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        struct migration m = {0};
        if (!parse_file_name(e->d_name, &m.version, &m.name)) {
            snprintf(errstr, errstr_size,
                     "migrate: %s/%s: name must be NNNN_name.sql (four digits from 0001, then "
                     "letters, digits or _)",
                     dir, e->d_name);
            goto out;
        }
        if (asprintf(&m.path, "%s/%s", dir, e->d_name) < 0) {
            free(m.name);
            snprintf(errstr, errstr_size, "migrate: out of memory");
            goto out;
        }
        size_t sql_len = 0;
        m.sql = read_file(m.path, &sql_len);
        if (!m.sql) {
            snprintf(errstr, errstr_size, "migrate: %s: %s", m.path, strerror(errno));
            free(m.name);
            free(m.path);
            goto out;
        }
        migrate_checksum(m.sql, sql_len, m.checksum);
        if (set.count == cap) {
            cap = cap ? cap * 2 : 16;
            struct migration *grown = realloc(set.items, cap * sizeof(*grown));
            if (!grown) {
                free(m.name);
                free(m.path);
                free(m.sql);
                snprintf(errstr, errstr_size, "migrate: out of memory");
                goto out;
            }
            set.items = grown;
        }
        set.items[set.count++] = m;
    }
    qsort(set.items, set.count, sizeof(*set.items), compare_version);
    for (size_t i = 1; i < set.count; i++) {
        if (set.items[i].version == set.items[i - 1].version) {
            snprintf(errstr, errstr_size, "migrate: %s and %s have the same version %04d",
                     set.items[i - 1].path, set.items[i].path, set.items[i].version);
            goto out;
        }
    }
    rc = 0;
out:
    closedir(d);
    if (rc == 0)
        *out = set;
    else
        migrate_set_free(&set);
    return rc;
}

void migrate_set_free(struct migration_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].name);
        free(set->items[i].path);
        free(set->items[i].sql);
    }
    free(set->items);
    set->items = NULL;
    set->count = 0;
}

static const struct migration *find_file(const struct migration_set *files, int version)
{
    for (size_t i = 0; i < files->count; i++)
        if (files->items[i].version == version)
            return &files->items[i];
    return NULL;
}

long migrate_plan(const struct migration_set *files, const struct migration_applied *applied,
                  size_t applied_count, char *errstr, size_t errstr_size)
{
    int newest_applied = 0;
    for (size_t i = 0; i < applied_count; i++) {
        const struct migration *m = find_file(files, applied[i].version);
        if (applied[i].version > newest_applied)
            newest_applied = applied[i].version;
        if (!m)
            continue; /* checked below: only an error when something would run after it */
        if (strcmp(m->checksum, applied[i].checksum) != 0) {
            snprintf(errstr, errstr_size,
                     "migrate: %s: checksum %.12s… differs from %.12s… recorded when version %04d "
                     "was applied; applied migrations must not change (add a new file instead)",
                     m->path, m->checksum, applied[i].checksum, m->version);
            return -1;
        }
    }
    /* Every file at or below the newest applied version must have been applied: a gap means a
     * file was added behind the back of the ledger. */
    long first_pending = (long)files->count;
    for (size_t i = 0; i < files->count; i++) {
        bool done = false;
        for (size_t j = 0; j < applied_count && !done; j++)
            done = applied[j].version == files->items[i].version;
        if (done)
            continue;
        if (files->items[i].version < newest_applied) {
            snprintf(errstr, errstr_size,
                     "migrate: %s: version %04d is older than the newest applied (%04d) but was "
                     "never applied; renumber it after %04d",
                     files->items[i].path, files->items[i].version, newest_applied, newest_applied);
            return -1;
        }
        if (first_pending == (long)files->count)
            first_pending = (long)i;
    }
    return first_pending;
}

static bool exec_ok(PGconn *conn, const char *sql, const char *what, char *errstr,
                    size_t errstr_size)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(errstr, errstr_size, "migrate: %s: %s", what, PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

bool migrate_privileges_ok(const struct migrate_privileges *p, char *errstr, size_t errstr_size)
{
    static const char remedy[] = "connect as the migration role ([postgres] migrate_conninfo; "
                                 "README.md, \"Least privilege\")";
    if (p->foreign && p->foreign[0]) {
        snprintf(errstr, errstr_size,
                 "migrate: role \"%s\" may not run migrations: it is not a member of the "
                 "schemas' owner: %s; %s",
                 p->role, p->foreign, remedy);
        return false;
    }
    if (!p->can_create) {
        snprintf(errstr, errstr_size,
                 "migrate: role \"%s\" may not run migrations: it has no CREATE privilege on "
                 "database \"%s\" (the migration role is a member of the database's owner); %s",
                 p->role, p->database, remedy);
        return false;
    }
    return true;
}

/* Asks the server what the connected role may do, then migrate_privileges_ok. */
static int check_privileges(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(
        conn,
        "SELECT current_user, current_database(),"
        " has_database_privilege(current_database(), 'CREATE'),"
        " coalesce((SELECT string_agg(format('%s owned by %s', nspname, pg_get_userbyid(nspowner)),"
        "                             ', ' ORDER BY nspname)"
        "             FROM pg_namespace"
        "            WHERE nspname IN ('solarx_meta', 'solarx_raw', 'solarx_wh')"
        "              AND NOT pg_has_role(nspowner, 'MEMBER')), '')");
    int rc = -1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        snprintf(errstr, errstr_size, "migrate: checking the role's privileges: %s",
                 PQresultErrorMessage(res));
        goto out;
    }
    struct migrate_privileges p = {
        .role = PQgetvalue(res, 0, 0),
        .database = PQgetvalue(res, 0, 1),
        .can_create = strcmp(PQgetvalue(res, 0, 2), "t") == 0,
        .foreign = PQgetvalue(res, 0, 3),
    };
    rc = migrate_privileges_ok(&p, errstr, errstr_size) ? 0 : -1;
out:
    PQclear(res);
    return rc;
}

/* Inside a migration's transaction: SET LOCAL ROLE to the owner of solarx_meta when the login is
 * a member of it but not it, so that objects the migration creates belong to the schemas' owner.
 * Copies the role the migration runs as into role. */
static bool run_as_schema_owner(PGconn *conn, const struct migration *m, char *role,
                                size_t role_size, char *errstr, size_t errstr_size)
{
    PGresult *res =
        PQexec(conn, "SELECT coalesce((SELECT set_config('role', pg_get_userbyid(nspowner), true)"
                     "                   FROM pg_namespace"
                     "                  WHERE nspname = 'solarx_meta'"
                     "                    AND pg_get_userbyid(nspowner) <> current_user"
                     "                    AND pg_has_role(session_user, nspowner, 'MEMBER')),"
                     "                current_user)");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        snprintf(role, role_size, "%s", PQgetvalue(res, 0, 0));
    else
        snprintf(errstr, errstr_size, "migrate: %s: switching to the schemas' owner: %s", m->path,
                 PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

static int apply_one(PGconn *conn, const struct migration *m, char *role, size_t role_size,
                     char *errstr, size_t errstr_size)
{
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[3] = {version, m->name, m->checksum};

    if (!exec_ok(conn, "BEGIN", m->path, errstr, errstr_size))
        return -1;
    if (!run_as_schema_owner(conn, m, role, role_size, errstr, errstr_size))
        goto rollback;
    if (!exec_ok(conn, m->sql, m->path, errstr, errstr_size))
        goto rollback;
    PGresult *res =
        PQexecParams(conn,
                     "INSERT INTO solarx_meta.schema_migrations (version, name, checksum) "
                     "VALUES ($1, $2, $3)",
                     3, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(errstr, errstr_size, "migrate: %s: recording in the ledger: %s", m->path,
                 PQresultErrorMessage(res));
    PQclear(res);
    if (!ok || !exec_ok(conn, "COMMIT", m->path, errstr, errstr_size))
        goto rollback;
    return 0;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}

int migrate_run(PGconn *conn, const char *dir, int *applied_out, char *errstr, size_t errstr_size)
{
    struct migration_set files = {0};
    struct migration_applied *applied = NULL;
    PGresult *ledger = NULL;
    bool locked = false;
    int rc = -1;

    *applied_out = 0;
    if (migrate_scan_dir(dir, &files, errstr, errstr_size) < 0)
        return -1;
    if (!exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")",
                 "taking the migration lock", errstr, errstr_size))
        goto out;
    locked = true;
    if (check_privileges(conn, errstr, errstr_size) < 0)
        goto out;
    if (!exec_ok(conn,
                 "SET client_min_messages = warning;"
                 "CREATE SCHEMA IF NOT EXISTS solarx_meta;"
                 "CREATE TABLE IF NOT EXISTS solarx_meta.schema_migrations ("
                 " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 "creating the ledger", errstr, errstr_size))
        goto out;
    ledger = PQexec(conn, "SELECT version, name, checksum FROM solarx_meta.schema_migrations "
                          "ORDER BY version");
    if (PQresultStatus(ledger) != PGRES_TUPLES_OK) {
        snprintf(errstr, errstr_size, "migrate: reading the ledger: %s",
                 PQresultErrorMessage(ledger));
        goto out;
    }
    size_t n = (size_t)PQntuples(ledger);
    applied = calloc(n ? n : 1, sizeof(*applied));
    if (!applied) {
        snprintf(errstr, errstr_size, "migrate: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        applied[i].version = atoi(PQgetvalue(ledger, (int)i, 0));
        applied[i].name = PQgetvalue(ledger, (int)i, 1);
        applied[i].checksum = PQgetvalue(ledger, (int)i, 2);
        if (!find_file(&files, applied[i].version))
            log_warn("event=migration_file_missing version=%d name=%s msg=\"applied, but no "
                     "longer in %s\"",
                     applied[i].version, applied[i].name, dir);
    }
    long first = migrate_plan(&files, applied, n, errstr, errstr_size);
    if (first < 0)
        goto out;
    for (size_t i = (size_t)first; i < files.count; i++) {
        char role[128];
        if (apply_one(conn, &files.items[i], role, sizeof(role), errstr, errstr_size) < 0)
            goto out;
        log_info("event=migration_applied version=%d name=%s checksum=%.12s role=%s",
                 files.items[i].version, files.items[i].name, files.items[i].checksum, role);
        (*applied_out)++;
    }
    rc = 0;
out:
    if (locked)
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")"));
    PQclear(ledger);
    free(applied);
    migrate_set_free(&files);
    return rc;
}

int migrate_at_start(const struct config *cfg, char *errstr, size_t errstr_size)
{
    struct db_backoff backoff = {0};
    for (;;) {
        PGconn *conn = db_connect_migrator(cfg, errstr, errstr_size);
        if (conn) {
            int applied = 0;
            int rc = migrate_run(conn, cfg->migrations_dir, &applied, errstr, errstr_size);
            PQfinish(conn);
            if (rc == 0)
                log_info("event=migrate_done applied=%d", applied);
            return rc;
        }
        int delay_ms = db_backoff_retry(&backoff, DB_RETRY_LOST);
        log_warn("event=postgres_unavailable msg=\"%s\" retry_in_ms=%d", errstr, delay_ms);
        struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}
