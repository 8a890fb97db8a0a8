/* The db pipeline's connection calls as libpq makes them (pgwire.h). */
#include "solarx/pgwire.h"

static int send_query(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
    return PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0);
}

const struct pgwire pgwire_libpq = {
    .set_nonblocking = PQsetnonblocking,
    .enter_pipeline_mode = PQenterPipelineMode,
    .exit_pipeline_mode = PQexitPipelineMode,
    .pipeline_sync = PQpipelineSync,
    .send_query = send_query,
    .flush = PQflush,
    .consume_input = PQconsumeInput,
    .is_busy = PQisBusy,
    .get_result = PQgetResult,
    .put_copy_data = PQputCopyData,
    .put_copy_end = PQputCopyEnd,
    .error_message = PQerrorMessage,
    .socket = PQsocket,
    .result_error_field = PQresultErrorField,
    .result_error_message = PQresultErrorMessage,
};
