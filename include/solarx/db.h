/* PostgreSQL connections: the blocking connect used before READY (migrate, status), and the
 * settings every session of the service runs with. */
#ifndef SOLARX_DB_H
#define SOLARX_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "solarx/config.h"

/* Connects with cfg's conninfo (PG* environment variables apply as usual; the password from
 * password_file, when set, is passed separately and never logged). Blocking. Returns the
 * connection, or NULL with errstr naming the server libpq tried. The caller PQfinish()es it. */
PGconn *db_connect_blocking(const struct config *cfg, char *errstr, size_t errstr_size);

/* Starts a non-blocking connect with the same parameters (PQconnectStartParams), as
 * application_name "solarx-stream <name>" (name NULL: "solarx-stream"); NULL only when out of
 * memory. The caller polls it with PQconnectPoll. */
PGconn *db_connect_start(const struct config *cfg, const char *name);

/* Writes "host=H port=P dbname=D user=U" for conn (the values libpq resolved, after PG*
 * variables and defaults) into buf and returns buf. Never a password: this is what errors and
 * logs show instead of the conninfo. conn may be NULL ("unknown server"). */
const char *db_describe(PGconn *conn, char *buf, size_t size);

/* Whether a conninfo (key=value or URI) carries a password itself. A string libpq cannot parse
 * counts as carrying one when it mentions "password" or has a URI's user:password@. */
bool db_conninfo_has_password(const char *conninfo);

/* Whether libpq can parse conninfo. On false, errstr has libpq's reason, unless the string may
 * hold a password, which libpq's reason could quote: then a reason without it. */
bool db_conninfo_check(const char *conninfo, char *errstr, size_t errstr_size)
    __attribute__((warn_unused_result));

/* Connects as the migration role: [postgres] migrate_conninfo and migrate_password_file when
 * migrate_conninfo is set, else exactly like db_connect_blocking. Blocking; same errors. */
PGconn *db_connect_migrator(const struct config *cfg, char *errstr, size_t errstr_size);

#endif
