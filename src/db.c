/* PostgreSQL connection set-up shared by the CLI commands and the service. */
#include "solarx/db.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* conninfo is expanded by libpq (expand_dbname); the password rides beside it. */
static void connect_params(const struct config *cfg, const char *application_name,
                           const char *keys[5], const char *values[5])
{
    int n = 0;
    /* A default the conninfo, expanded after it, may override. */
    keys[n] = "connect_timeout", values[n++] = "10";
    keys[n] = "dbname", values[n++] = cfg->pg_conninfo;
    keys[n] = "application_name", values[n++] = application_name;
    if (cfg->pg_password)
        keys[n] = "password", values[n++] = cfg->pg_password;
    keys[n] = NULL, values[n] = NULL;
}

PGconn *db_connect_blocking(const struct config *cfg, char *errstr, size_t errstr_size)
{
    const char *keys[5], *values[5];
    connect_params(cfg, "solarx-stream", keys, values);
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        snprintf(errstr, errstr_size, "postgres: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        char target[256];
        snprintf(errstr, errstr_size, "postgres: cannot connect (%s): %s",
                 db_describe(conn, target, sizeof(target)), msg);
        PQfinish(conn);
        return NULL;
    }
    PQclear(PQexec(conn, "SET TIME ZONE 'UTC'"));
    return conn;
}

PGconn *db_connect_start(const struct config *cfg, const char *name)
{
    char application_name[64];
    snprintf(application_name, sizeof(application_name), "solarx-stream%s%s", name ? " " : "",
             name ? name : "");
    const char *keys[5], *values[5];
    connect_params(cfg, application_name, keys, values);
    return PQconnectStartParams(keys, values, 1);
}

/* Appends " key=value" to buf when value is set; values are quoted when they need it. */
static void append_param(char *buf, size_t size, const char *key, const char *value)
{
    size_t used = strlen(buf);
    if (!value || !*value || used >= size)
        return;
    bool plain = strcspn(value, " '\\\"") == strlen(value);
    snprintf(buf + used, size - used, plain ? "%s%s=%s" : "%s%s='%s'", used ? " " : "", key, value);
}

const char *db_describe(PGconn *conn, char *buf, size_t size)
{
    if (!size)
        return buf;
    buf[0] = '\0';
    if (conn) {
        append_param(buf, size, "host", PQhost(conn));
        append_param(buf, size, "port", PQport(conn));
        append_param(buf, size, "dbname", PQdb(conn));
        append_param(buf, size, "user", PQuser(conn));
    }
    if (!buf[0])
        snprintf(buf, size, "unknown server");
    return buf;
}

bool db_conninfo_has_password(const char *conninfo)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (!opts) {
        PQfreemem(err);
        /* Unparsable: it may still hold one; libpq will say what is wrong, without echoing it. */
        return strstr(conninfo, "password") != NULL || strchr(conninfo, '@') != NULL;
    }
    bool found = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            found = true;
    PQconninfoFree(opts);
    return found;
}

bool db_conninfo_check(const char *conninfo, char *errstr, size_t errstr_size)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts) {
        PQconninfoFree(opts);
        return true;
    }
    if (!err)
        snprintf(errstr, errstr_size, "out of memory");
    else if (db_conninfo_has_password(conninfo))
        snprintf(errstr, errstr_size,
                 "libpq cannot parse it (its reason is withheld: it may quote the password)");
    else
        snprintf(errstr, errstr_size, "%.*s", (int)strcspn(err, "\n"), err);
    PQfreemem(err);
    return false;
}

PGconn *db_connect_migrator(const struct config *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg->pg_migrate_conninfo || !cfg->pg_migrate_conninfo[0])
        return db_connect_blocking(cfg, errstr, errstr_size);
    struct config as_migrator = *cfg; /* shallow: only the connection settings differ */
    as_migrator.pg_conninfo = cfg->pg_migrate_conninfo;
    as_migrator.pg_password = cfg->pg_migrate_password;
    return db_connect_blocking(&as_migrator, errstr, errstr_size);
}
