/*
 * Example rule (ABI v1, with the `sales` input): the customer's segment from this
 * year's sales, as an accounting system's "Manage Segments" screen would assign it,
 * and the `repeat_buyer` cluster for customers with two or more orders this year.
 *
 *   segment AA  this year's EUR sales above 10,000
 *   segment A   above 1,000
 *   segment B   otherwise
 *
 * Totals are read per currency ("sales.this_year.totals.EUR", a decimal string);
 * sales in other currencies do not count toward the segment.
 */
#include "segmentation_rule.h"

#define AA_SALES 10000.0
#define A_SALES 1000.0

int main(void) {
    char *input = sr_read_input(NULL);
    if (sr_lookup(input, "sales", "this_year", NULL) == NULL)
        sr_fail(SR_EXIT_BAD_INPUT, "invalid rule input: no `sales.this_year` (ABI older than expected?)");

    double sales = 0.0;
    const char *eur = sr_lookup(input, "sales", "this_year", "totals", "EUR", NULL);
    if (eur != NULL && !sr_as_number(eur, &sales))
        sr_fail(SR_EXIT_RULE_ERROR, "rule failed: sales.this_year.totals.EUR is not a decimal");
    double orders = 0.0;
    const char *count = sr_lookup(input, "sales", "this_year", "orders", NULL);
    if (count != NULL && !sr_as_number(count, &orders))
        sr_fail(SR_EXIT_RULE_ERROR, "rule failed: sales.this_year.orders is not a number");

    const char *segment = sales > AA_SALES ? "AA" : sales > A_SALES ? "A" : "B";
    fprintf(stderr, "sales-tier-c: EUR %.2f in %.0f orders -> segment %s\n", sales, orders, segment);

    sr_output out;
    sr_output_init(&out);
    sr_cluster_bool(&out, "repeat_buyer", orders >= 2);
    sr_output_write(&out, SR_SEGMENT_SET, segment);
    free(input);
    return 0;
}
