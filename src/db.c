/* PostgreSQL connection set-up shared by the CLI commands and the service. */
#include "solarx/db.h"

#include <stdio.h>
#include <string.h>

/* conninfo is expanded by libpq (expand_dbname); the password rides beside it. */
static void connect_params(const struct config *cfg, const char *keys[5], const char *values[5])
{
    int n = 0;
    /* A default the conninfo, expanded after it, may override. */
    keys[n] = "connect_timeout", values[n++] = "10";
    keys[n] = "dbname", values[n++] = cfg->pg_conninfo;
    keys[n] = "application_name", values[n++] = "solarx-stream";
    if (cfg->pg_password)
        keys[n] = "password", values[n++] = cfg->pg_password;
    keys[n] = NULL, values[n] = NULL;
}

PGconn *db_connect_blocking(const struct config *cfg, char *errstr, size_t errstr_size)
{
    const char *keys[5], *values[5];
    connect_params(cfg, keys, values);
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) {
        snprintf(errstr, errstr_size, "postgres: out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        snprintf(errstr, errstr_size, "postgres: cannot connect (%s): %s", cfg->pg_conninfo, msg);
        PQfinish(conn);
        return NULL;
    }
    PQclear(PQexec(conn, "SET TIME ZONE 'UTC'"));
    return conn;
}

PGconn *db_connect_start(const struct config *cfg)
{
    const char *keys[5], *values[5];
    connect_params(cfg, keys, values);
    return PQconnectStartParams(keys, values, 1);
}
