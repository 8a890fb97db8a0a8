/* The libpq calls the db pipeline (dbpipe.h) makes on the connection it is lent, as a table of
 * functions (none closes it: its owner does, see flusher_attach): libpq's own (pgwire_libpq) in
 * the service, a recording fake in unit tests, which replays canned results (built with
 * PQmakeEmptyPGresult / PQsetResultAttrs / PQsetvalue) so that the pipeline, and the flush's
 * planning, merging and statements, are tested without PostgreSQL. Each entry has the contract
 * of the libpq function it is named after. */
#ifndef SOLARX_PGWIRE_H
#define SOLARX_PGWIRE_H

#include <libpq-fe.h>

struct pgwire {
    int (*set_nonblocking)(PGconn *conn, int on);
    int (*enter_pipeline_mode)(PGconn *conn);
    int (*exit_pipeline_mode)(PGconn *conn);
    int (*pipeline_sync)(PGconn *conn);
    /* PQsendQueryParams with text parameters and a text result */
    int (*send_query)(PGconn *conn, const char *sql, int nparams, const char *const *values);
    int (*flush)(PGconn *conn);
    int (*consume_input)(PGconn *conn);
    int (*is_busy)(PGconn *conn);
    PGresult *(*get_result)(PGconn *conn);
    int (*put_copy_data)(PGconn *conn, const char *buf, int len);
    int (*put_copy_end)(PGconn *conn, const char *errormsg);
    char *(*error_message)(const PGconn *conn);
    int (*socket)(const PGconn *conn);
    /* on results this wire returned */
    char *(*result_error_field)(const PGresult *res, int fieldcode);
    char *(*result_error_message)(const PGresult *res);
};

/* libpq itself. */
extern const struct pgwire pgwire_libpq;

#endif
