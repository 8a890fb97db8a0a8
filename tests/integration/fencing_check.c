/* Drives the real flusher against PostgreSQL to check fencing deterministically: two claims of one
 * partition, then flushes under the old epoch (fenced: rolled back, offset unchanged), the new
 * one (committed), no claim and a pending claim (fenced). Usage: fencing_check CONFIG (a migrated
 * database; the group is the config's group.id). Prints one PASS line or exits 1 with the check
 * that failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "solarx/batch.h"
#include "solarx/claims.h"
#include "solarx/clock.h"
#include "solarx/db.h"
#include "solarx/flush.h"
#include "solarx/ownership.h"

static struct config *cfg;
static PGconn *probe;

static void check(bool ok, const char *what, const char *detail)
{
    if (ok)
        return;
    fprintf(stderr, "FAIL: fencing_check: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    exit(1);
}

/* "next_offset raw_rows" of home partition 0 and the raw table, as PostgreSQL has them now. */
static const char *stored_state(void)
{
    static char out[64];
    PGresult *res =
        PQexec(probe, "SELECT coalesce((SELECT next_offset::text FROM solarx_meta.consumer_offsets"
                      "  WHERE \"partition\" = 0 AND topic = 'fencing-home'), 'null')"
                      " || ' ' || (SELECT count(*) FROM solarx_raw.home_power_readings)");
    check(PQresultStatus(res) == PGRES_TUPLES_OK, "reading the stored state",
          PQresultErrorMessage(res));
    snprintf(out, sizeof(out), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

/* One flush of a batch holding one reading at (home partition 0, offset) under claims. */
static enum flush_progress flush_one(const struct clock_zone *zone, struct claims *claims,
                                     int64_t offset, int64_t ts, char *error, size_t error_size)
{
    char err[512];
    struct flusher *f = flusher_new(cfg, zone, "fencing-group");
    check(f != NULL, "flusher_new", NULL);
    flusher_set_claims(f, claims);
    PGconn *conn = db_connect_blocking(cfg, err, sizeof(err));
    check(conn != NULL, "connect", err);
    check(flusher_attach(f, conn), "flusher_attach", flusher_error(f));
    struct batch *b = batch_new(900, zone);
    struct reading r = {
        .kind = READING_HOME, .home_id = 1, .device_id = 1, .ts = ts, .energy_wh = 1000000};
    batch_add_reading(b, &r, 0, offset);
    batch_note_offset(b, READING_HOME, 0, offset);
    enum flush_progress p = flusher_start(f, b);
    if (p == FLUSH_BUSY)
        p = flusher_run_blocking(f);
    snprintf(error, error_size, "%s", flusher_error(f));
    batch_destroy(b);
    flusher_destroy(f);
    PQfinish(conn); /* the flusher only borrowed it */
    return p;
}

int main(int argc, char **argv)
{
    char err[512], error[1024];
    if (argc != 2) {
        fprintf(stderr, "usage: fencing_check CONFIG\n");
        return 64;
    }
    cfg = config_load(argv[1], NULL, err, sizeof(err));
    check(cfg != NULL, "config", err);
    check(strcmp(cfg->topic[READING_HOME], "fencing-home") == 0, "config",
          "[topics] home must be fencing-home");
    struct clock_zone *zone = clock_zone_new("UTC", err, sizeof(err));
    check(zone != NULL, "zone", err);
    probe = db_connect_blocking(cfg, err, sizeof(err));
    check(probe != NULL, "connect", err);

    /* The zombie claims first, the new owner second. */
    struct claims *zombie = claims_new(), *owner = claims_new(), *none = claims_new(),
                  *pending = claims_new();
    struct ownership_partition part = {.kind = READING_HOME, .partition = 0};
    check(
        ownership_claim(probe, cfg, "fencing-group", "zombie", &part, 1, zombie, err, sizeof(err)),
        "first claim", err);
    int64_t first = part.epoch;
    check(part.next_offset == -1, "a first claim finds no offset", NULL);
    check(ownership_claim(probe, cfg, "fencing-group", "owner", &part, 1, owner, err, sizeof(err)),
          "second claim", err);
    check(part.epoch == first + 1, "the second claim increments the epoch", NULL);
    check(claims_epoch(zombie, READING_HOME, 0) == first, "the zombie keeps its epoch", NULL);

    /* 1. The zombie's flush under the old epoch: fenced, nothing written, no offset. */
    int64_t ts = 1739491200; /* 2025-02-14 00:00:00 UTC */
    enum flush_progress p = flush_one(zone, zombie, 41, ts, error, sizeof(error));
    check(p == FLUSH_FENCED, "a flush under the old epoch is fenced", error);
    check(strstr(error, "fenced") != NULL, "the error says fenced", error);
    check(strcmp(stored_state(), "null 0") == 0, "a fenced flush writes nothing", stored_state());

    /* 2. The new owner's flush: committed. */
    p = flush_one(zone, owner, 41, ts, error, sizeof(error));
    check(p == FLUSH_COMMITTED, "the owner's flush commits", error);
    check(strcmp(stored_state(), "42 1") == 0, "the owner's flush stores 42 and one row",
          stored_state());

    /* 3. The zombie again, further on: fenced, the owner's offset stays. */
    p = flush_one(zone, zombie, 99, ts + 1, error, sizeof(error));
    check(p == FLUSH_FENCED, "a later flush under the old epoch is fenced", error);
    check(strcmp(stored_state(), "42 1") == 0, "the stored offset does not move", stored_state());

    /* 4. No claim at all, and a claim still pending: fenced too. */
    p = flush_one(zone, none, 100, ts + 2, error, sizeof(error));
    check(p == FLUSH_FENCED, "a flush of an unclaimed partition is fenced", error);
    check(claims_set(pending, READING_HOME, 0, CLAIMS_PENDING, -1), "claims_set", NULL);
    p = flush_one(zone, pending, 101, ts + 3, error, sizeof(error));
    check(p == FLUSH_FENCED, "a flush under a pending claim is fenced", error);
    check(strcmp(stored_state(), "42 1") == 0, "the stored offset still does not move",
          stored_state());

    /* 5. The owner goes on. */
    p = flush_one(zone, owner, 120, ts + 4, error, sizeof(error));
    check(p == FLUSH_COMMITTED, "the owner's next flush commits", error);
    check(strcmp(stored_state(), "121 2") == 0, "the owner moves the offset to 121",
          stored_state());

    printf("fencing_check: PASS epochs=%lld,%lld fenced_flushes=4 committed_flushes=2 "
           "stored=%s\n",
           (long long)first, (long long)first + 1, stored_state());
    claims_destroy(zombie);
    claims_destroy(owner);
    claims_destroy(none);
    claims_destroy(pending);
    PQfinish(probe);
    clock_zone_destroy(zone);
    config_destroy(cfg);
    return 0;
}
