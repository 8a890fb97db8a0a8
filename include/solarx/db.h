/* PostgreSQL connections: the blocking connect used before READY (migrate, status), and the
 * settings every session of the service runs with. */
#ifndef SOLARX_DB_H
#define SOLARX_DB_H

#include <libpq-fe.h>
#include <stddef.h>

#include "solarx/config.h"

/* Connects with cfg's conninfo (PG* environment variables apply as usual; the password from
 * password_file, when set, is passed separately and never logged). Blocking. Returns the
 * connection, or NULL with errstr naming the server libpq tried. The caller PQfinish()es it. */
PGconn *db_connect_blocking(const struct config *cfg, char *errstr, size_t errstr_size);

/* Starts a non-blocking connect with the same parameters (PQconnectStartParams); NULL only when
 * out of memory. The caller polls it with PQconnectPoll. */
PGconn *db_connect_start(const struct config *cfg);

#endif
