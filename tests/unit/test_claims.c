/* Unit tests of partition claims: epochs, pending claims, resume offsets. */
#include <criterion/criterion.h>

#include "solarx/claims.h"

Test(claims, an_unknown_partition_has_no_claim)
{
    struct claims *c = claims_new();
    cr_assert_eq(claims_epoch(c, 0, 3), CLAIMS_NONE);
    claims_remove(c, 0, 3);
    cr_assert_eq(claims_count(c), 0);
    claims_destroy(c);
}

Test(claims, a_new_claim_replaces_the_old_epoch_and_resume)
{
    struct claims *c = claims_new();
    cr_assert(claims_set(c, 1, 2, 4, 100));
    cr_assert(claims_set(c, 1, 2, 5, 120));
    cr_assert_eq(claims_epoch(c, 1, 2), 5);
    cr_assert_eq(claims_epoch(c, 0, 2), CLAIMS_NONE, "kinds are apart");
    cr_assert_eq(claims_count(c), 1);
    claims_destroy(c);
}

Test(claims, pending_claims_are_counted_until_claimed_or_removed)
{
    struct claims *c = claims_new();
    cr_assert(claims_set(c, 0, 0, CLAIMS_PENDING, -1));
    cr_assert(claims_set(c, 0, 1, CLAIMS_PENDING, -1));
    cr_assert_eq(claims_pending(c), 2);
    cr_assert(claims_set(c, 0, 0, 7, 10));
    cr_assert_eq(claims_pending(c), 1);
    claims_remove(c, 0, 1);
    cr_assert_eq(claims_pending(c), 0);
    cr_assert_eq(claims_epoch(c, 0, 0), 7);
    claims_destroy(c);
}

struct seen {
    int64_t resume[4];
};

static void collect(void *ctx, int kind, int32_t partition, int64_t epoch, int64_t resume)
{
    (void)kind;
    (void)epoch;
    ((struct seen *)ctx)->resume[partition] = resume;
}

Test(claims, resume_is_the_stored_offset_else_the_first_consumed_one)
{
    struct claims *c = claims_new();
    cr_assert(claims_set(c, 0, 0, 1, 50)); /* stored in PostgreSQL */
    cr_assert(claims_set(c, 0, 1, 1, -1)); /* nothing stored */
    claims_note_consumed(c, 0, 0, 50);
    claims_note_consumed(c, 0, 1, 9);
    claims_note_consumed(c, 0, 1, 10); /* only the first counts */
    claims_note_consumed(c, 0, 3, 1);  /* not claimed: ignored */
    struct seen s = {{-2, -2, -2, -2}};
    claims_each(c, collect, &s);
    cr_assert_eq(s.resume[0], 50);
    cr_assert_eq(s.resume[1], 9);
    cr_assert_eq(s.resume[3], -2);
    claims_note_stored(c, 0, 1, 30);
    claims_note_stored(c, 0, 1, 20); /* never backwards */
    claims_each(c, collect, &s);
    cr_assert_eq(s.resume[1], 30);
    claims_destroy(c);
}
