// The SDK's helpers, checked inside the module: a WASI command that exits 0
// when every check holds and 1 with the failed checks in its log otherwise.
// tests/sdk.test.mjs builds and runs it.
import {
  Customer,
  JsonKind,
  Output,
  formatNumber,
  log,
  parseDecimal,
  parseInputString,
  parseJsonString,
} from "../index";
import { proc_exit } from "@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1";

let failures = 0;

function check(ok: bool, what: string): void {
  if (!ok) {
    failures++;
    log("FAILED: " + what);
  }
}

function checkEq(got: string, want: string, what: string): void {
  check(got == want, what + ": got " + got + ", want " + want);
}

function customer(fields: string): Customer {
  const parsed = parseInputString(
    '{"abi":1,"customer":{"id":"c1","email":"a@b.c","segment":null,"fields":' +
      fields +
      '},"segments":[],"rule":{"name":"t","version":1},"future_key":{"ignored":true}}',
  );
  check(parsed.input != null, "input parses: " + parsed.error);
  return parsed.input!.customer;
}

// Decimal strings: [-+]digits[.digits] only.
check(parseDecimal("12500.50") == 12500.5, "12500.50");
check(parseDecimal("-3") == -3 && parseDecimal("+7.25") == 7.25, "signs");
for (let i = 0; i < 9; i++) {
  const bad = ["1e9", "lots", "", ".5", "5.", "1.2.3", "Infinity", "0x10", " 1"][i];
  check(isNaN(parseDecimal(bad)), "not a decimal: " + bad);
}

// Custom fields: numbers from numbers and decimal strings; errors name the field.
const c = customer('{"a":12,"b":"12500.50","c":"1e9","d":null,"e":true,"t":"x","f":true}');
check(c.number("a", 0) == 12, "a number");
check(c.number("b", 0) == 12500.5, "a decimal string");
check(c.number("d", -1) == -1 && c.number("missing", -2) == -2, "null and absent use the fallback");
const exponent = c.tryNumber("c");
check(exponent.present && exponent.error != null, "1e9 is an error");
checkEq(exponent.error!, 'field `c` is not a number: "1e9"', "the error names the field");
checkEq(c.tryNumber("e").error!, "field `e` is not a number: true", "a boolean is an error");
check(!c.tryNumber("missing").present && c.tryNumber("missing").error == null, "absent");
checkEq(c.text("t")!, "x", "text");
check(c.text("a") == null && c.text("missing") == null, "text of a number or nothing");
check(c.flag("f", false) && !c.flag("t", false) && c.flag("missing", true), "flag");
check(c.segment == null && c.firstName == null, "null and absent optional members");

// The three segment choices, and cluster values of each kind.
const base = new Output().cluster("tier", "A");
checkEq(base.toJson(), '{"clusters":{"tier":"A"}}', "unchanged");
checkEq(
  new Output().cluster("tier", "A").clearSegment().toJson(),
  '{"clusters":{"tier":"A"},"segment":null}',
  "clear",
);
checkEq(
  new Output().cluster("tier", "A").segment("gold").toJson(),
  '{"clusters":{"tier":"A"},"segment":"gold"}',
  "set",
);
checkEq(
  new Output()
    .cluster("n", 3)
    .cluster("x", 0.5)
    .cluster("b", false)
    .clusterNull("z")
    .cluster("n", 4)
    .toJson(),
  '{"clusters":{"b":false,"n":4,"x":0.5,"z":null}}',
  "numbers, booleans, null, sorted; a repeated name replaces",
);
checkEq(
  new Output().cluster('q"\\\n\u0001é', "ok").toJson(),
  '{"clusters":{"q\\"\\\\\\n\\u0001é":"ok"}}',
  "escapes in output strings",
);
checkEq(formatNumber(150000), "150000", "integers print without a fraction");
checkEq(formatNumber(NaN), "null", "NaN is null");

// The reader: escapes, UTF-8, duplicates, nesting, errors.
const text = parseJsonString('{"s":"a\\"b\\\\c\\u00e9\\ud83d\\ude00 ü","k":1,"k":2}');
check(text.value != null, "escapes parse: " + text.error);
checkEq(text.value!.get("s")!.str, 'a"b\\cé😀 ü', "escapes and UTF-8 decode");
check(text.value!.get("k")!.num == 2, "the last duplicate wins");
check(parseJsonString("[1,[2,[3]],{}]").value!.at(1).kind == JsonKind.Array, "nested arrays");
checkEq(parseJsonString("-0.5e2").value!.toString(), "-50", "exponents");
checkEq(parseJsonString('{"a": [true, null]}').value!.toString(), '{"a":[true,null]}', "round trip");
const errors = [
  "",
  "{",
  '{"a":1,}',
  "[1 2]",
  "01",
  "1.",
  "-",
  "nul",
  '"abc',
  '"a\\x"',
  '"a\\u12"',
  '"tab\there"',
  "{} {}",
  "1e999",
  "[".repeat(200) + "]".repeat(200),
];
for (let i = 0; i < errors.length; i++) {
  check(parseJsonString(errors[i]).value == null, "not JSON: " + errors[i].substring(0, 20));
}
checkEq(parseJsonString("[1 2]").error, "expected `,` or `]` at byte 3", "error position");

// Inputs: abi and the required members.
checkEq(
  parseInputString('{"abi":2,"customer":{"id":"c"},"rule":{"name":"t"}}').error,
  "rule input has abi 2; this rule was built for abi 1",
  "wrong abi",
);
checkEq(
  parseInputString('{"abi":1,"customer":{"id":7},"rule":{"name":"t"}}').error,
  "invalid rule input: `customer.id` must be a string",
  "mistyped member",
);
checkEq(
  parseInputString('{"abi":1,"customer":{"id":"c"}}').error,
  "invalid rule input: `rule` must be an object",
  "missing member",
);
const full = parseInputString(
  '{"abi":1,"customer":{"id":"c","email":"e","first_name":"Ana","segment":{"id":"s1","name":"retail"},' +
    '"fields":{}},"segments":[{"id":"s1","name":"retail"},{"id":"s2","name":"gold"}],' +
    '"rule":{"name":"t","version":3},"sales":{"this_year":{"orders":2}}}',
).input!;
check(full.customer.firstName! == "Ana" && full.customer.segment!.name == "retail", "customer");
check(full.segments.length == 2 && full.segments[1].id == "s2", "segments");
checkEq(full.rule.version.toString(), "3", "rule version");
check(full.document.get("sales")!.get("this_year")!.get("orders")!.num == 2, "other keys");

if (failures > 0) {
  log(failures.toString() + " checks failed");
  proc_exit(1);
}
log("all checks passed");
