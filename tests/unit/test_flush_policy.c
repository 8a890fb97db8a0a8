/* Unit tests of the flush failure classification: which SQLSTATEs are retried as they are, which
 * the server would refuse for any batch, and which lead to isolating the rejected messages. */
#include <criterion/criterion.h>

#include "solarx/flush.h"

Test(flush_policy, connection_loss_and_contention_are_transient)
{
    static const char *const transient[] = {"",      "08006", "08003", "08P01", "40001", "40P01",
                                            "55P03", "57P01", "57P02", "57P03", "53300"};
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        cr_assert_eq(flush_classify_sqlstate(transient[i]), FLUSH_FAILURE_TRANSIENT, "%s",
                     transient[i]);
    cr_assert_eq(flush_classify_sqlstate(NULL), FLUSH_FAILURE_TRANSIENT);
}

Test(flush_policy, errors_no_content_can_cause_are_systemic)
{
    static const char *const systemic[] = {"42501", "42P01", "42883", "25006", "28P01",
                                           "3D000", "3F000", "53100", "58030", "XX000"};
    for (size_t i = 0; i < sizeof(systemic) / sizeof(systemic[0]); i++)
        cr_assert_eq(flush_classify_sqlstate(systemic[i]), FLUSH_FAILURE_SYSTEMIC, "%s",
                     systemic[i]);
}

Test(flush_policy, content_errors_are_rejections)
{
    static const char *const rejected[] = {"22003", "22021", "22P05", "23514", "23505",
                                           "54000", "53200", "P0001", "22008"};
    for (size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++)
        cr_assert_eq(flush_classify_sqlstate(rejected[i]), FLUSH_FAILURE_REJECTED, "%s",
                     rejected[i]);
    cr_assert_str_eq(flush_failure_name(FLUSH_FAILURE_REJECTED), "rejected");
}
