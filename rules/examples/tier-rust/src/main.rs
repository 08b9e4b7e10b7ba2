//! Example rule (ABI v1): `tier` from annual revenue, `distributor` from the
//! customer type. The C example in `../tier-c` implements the same logic.
//!
//! `no_std` on WASI, with `alloc` for the SDK's `String` and `Vec`: the module has no
//! std runtime, no wasi-libc `malloc` and no float formatting (`docs/rule-performance.md`
//! "Artifact load"). Natively it is an ordinary program, for trying it out.

#![cfg_attr(target_os = "wasi", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
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
    // The revenue as the input spelled it (`150000`, `12500.50`, `null`), not the
    // `f64`: formatting a float would add about 25 KB to the module. `log!` joins its
    // pieces without `core::fmt`, which a run pays for (`rules/README.md`).
    segmentation_rule::log!(
        input.rule.name,
        " v",
        input.rule.version,
        ": customer ",
        customer.id,
        " revenue ",
        customer.field("annual_revenue"),
        " -> tier ",
        tier
    );
    Ok(Output::new()
        .cluster("tier", tier)
        .cluster("distributor", distributor))
}

segmentation_rule::main!(evaluate);
