// A rule made to exercise `run`: `fields.mode` picks what it does, so
// tests/sdk.test.mjs can check each exit status and output shape.
import { Input, Output, fail, run } from "../index";

function evaluate(input: Input): Output {
  const customer = input.customer;
  const mode = customer.text("mode");
  const output = new Output()
    .cluster("id", customer.id)
    .cluster("segments", input.segments.length)
    .cluster("revenue", customer.number("revenue", 0));
  if (mode == null) return output;
  if (mode == "fail") fail("asked to fail");
  if (mode == "set") return output.segment("gold");
  if (mode == "clear") return output.clearSegment();
  if (mode == "throw") throw new Error("thrown");
  return output;
}

run(evaluate);
