/* How the flush sends its statements: a query names its statement (statements.h), gives its
 * parameter values by the statement's P_ names, and carries the handler its result goes to.
 * The flusher implements it over libpq's pipeline mode; tests implement it with a recording
 * fake (PQmakeEmptyPGresult builds their canned results). */
#ifndef SOLARX_DBPIPE_H
#define SOLARX_DBPIPE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "solarx/statements.h"

/* Takes the successful result of one query (read its columns by the statement's C_ names).
 * Returns false with errstr (a message naming what is wrong) when the result is unacceptable:
 * the flush fails. */
typedef bool (*db_result_fn)(void *ctx, PGresult *res, char *errstr, size_t errstr_size);

struct db_pipe {
    /* Queues stmt with values[0..nparams) (copied before it returns; NULL values are SQL NULL).
     * on_result (NULL: the result is not read) gets the result with ctx once it arrives.
     * Returns false when the query cannot be sent (the pipe records why). */
    bool (*send)(struct db_pipe *pipe, enum stmt_id stmt, const char *const *values,
                 db_result_fn on_result, void *ctx);
};

static inline __attribute__((warn_unused_result)) bool db_send(struct db_pipe *pipe,
                                                               enum stmt_id stmt,
                                                               const char *const *values,
                                                               db_result_fn on_result, void *ctx)
{
    return pipe->send(pipe, stmt, values, on_result, ctx);
}

#endif
