/*
 * Example rule (ABI v1): `tier` from annual revenue, `distributor` from the
 * customer type. The Rust example in ../tier-rust implements the same logic.
 */
#include "segmentation_rule.h"

/* Revenue at or above this is tier "AA". */
#define AA_REVENUE 100000.0
/* Revenue at or above this (and below AA) is tier "A"; the rest is "B". */
#define A_REVENUE 10000.0

int main(void) {
    char *input = sr_read_input(NULL);
    const char *customer = sr_lookup(input, "customer", NULL);
    if (customer == NULL)
        sr_fail(SR_EXIT_BAD_INPUT, "invalid rule input: no `customer` object");
    /* The custom fields, found once; NULL when the customer has none. */
    const char *fields = sr_member(customer, "fields");

    double revenue = 0.0;
    const char *raw = sr_member(fields, "annual_revenue");
    if (!sr_is_null(raw) && !sr_as_number(raw, &revenue))
        sr_fail(SR_EXIT_RULE_ERROR, "rule failed: field `annual_revenue` is not a number");
    const char *tier = revenue >= AA_REVENUE ? "AA" : revenue >= A_REVENUE ? "A" : "B";

    char type[32];
    int wholesale = 0;
    const char *customer_type = sr_member(fields, "customer_type");
    const char *wholesale_flag = sr_member(fields, "wholesale");
    int distributor = (sr_as_text(customer_type, type, sizeof type) && strcmp(type, "distributor") == 0)
                      || (sr_as_bool(wholesale_flag, &wholesale) && wholesale);

    /* The revenue as the input spelled it (`150000`, `12500.50`, `null`): printing the
     * double with fprintf's `%.2f` would cost about a quarter of this rule's work. */
    char spelled[32];
    sr_spelled(raw, spelled, sizeof spelled);
    sr_log("tier-c: revenue ", spelled, " -> tier ", tier, NULL);

    sr_output out;
    sr_output_init(&out);
    sr_cluster_text(&out, "tier", tier);
    sr_cluster_bool(&out, "distributor", distributor);
    sr_output_write(&out, SR_SEGMENT_UNCHANGED, NULL);
    free(input);
    return 0;
}
