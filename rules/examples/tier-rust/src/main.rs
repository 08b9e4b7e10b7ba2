//! Example rule (ABI v1): `tier` from annual revenue, `distributor` from the
//! customer type. The C example in `../tier-c` implements the same logic.

use segmentation_rule::{Input, Output};

/// Revenue at or above this is tier "AA".
const AA_REVENUE: f64 = 100_000.0;
/// Revenue at or above this (and below AA) is tier "A"; the rest is "B".
const A_REVENUE: f64 = 10_000.0;

fn evaluate(input: &Input) -> Result<Output, String> {
    let customer = &input.customer;
    let revenue = customer.number("annual_revenue")?.unwrap_or(0.0);
    let tier = if revenue >= AA_REVENUE {
        "AA"
    } else if revenue >= A_REVENUE {
        "A"
    } else {
        "B"
    };
    let distributor = customer.text("customer_type") == Some("distributor")
        || customer.flag("wholesale") == Some(true);
    segmentation_rule::log(format_args!(
        "{} v{}: customer {} revenue {} -> tier {}",
        input.rule.name, input.rule.version, customer.id, revenue, tier
    ));
    Ok(Output::new()
        .cluster("tier", tier)
        .cluster("distributor", distributor))
}

fn main() {
    segmentation_rule::run(evaluate)
}
