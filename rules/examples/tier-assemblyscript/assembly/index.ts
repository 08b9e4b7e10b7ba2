// Example rule (ABI v1): `tier` from annual revenue, `distributor` from the
// customer type. ../tier-rust and ../tier-c implement the same logic.
import { Input, Output, formatNumber, log, run } from "@segmentation/rule-sdk";

/** Revenue at or above this is tier "AA". */
const AA_REVENUE: f64 = 100_000;
/** Revenue at or above this (and below AA) is tier "A"; the rest is "B". */
const A_REVENUE: f64 = 10_000;

function evaluate(input: Input): Output {
  const customer = input.customer;
  // Absent or null counts as 0; anything but a number fails the rule.
  const revenue = customer.number("annual_revenue", 0);
  const tier = revenue >= AA_REVENUE ? "AA" : revenue >= A_REVENUE ? "A" : "B";
  const distributor =
    customer.text("customer_type") == "distributor" || customer.flag("wholesale", false);
  log(
    input.rule.name +
      " v" +
      input.rule.version.toString() +
      ": customer " +
      customer.id +
      " revenue " +
      formatNumber(revenue) +
      " -> tier " +
      tier,
  );
  return new Output().cluster("tier", tier).cluster("distributor", distributor);
}

run(evaluate);
