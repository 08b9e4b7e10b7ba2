// Guest SDK for customer-segmentation rules in AssemblyScript, rule ABI v1.
//
// A rule is a WASI preview1 command: the host writes one JSON document to
// stdin and reads one JSON document from stdout; stderr is the rule's log.
// This module does that plumbing, so a rule is a plain function from `Input`
// to `Output`:
//
//   import { Input, Output, run } from "@segmentation/rule-sdk";
//
//   function evaluate(input: Input): Output {
//     const revenue = input.customer.number("annual_revenue", 0);
//     return new Output().cluster("vip", revenue >= 100000);
//   }
//
//   run(evaluate);
//
// AssemblyScript has no catchable exceptions: a rule reports an error with
// `fail(reason)` (exit status 1), never `throw` (an abort, status 255).

import {
  errno,
  errnoToString,
  fd_read,
  fd_write,
  iovec,
  proc_exit,
} from "@assemblyscript/wasi-shim/assembly/bindings/wasi_snapshot_preview1";
import { JsonKind, JsonValue, parseJson, writeString } from "./json";

export {
  JsonKind,
  JsonParse,
  JsonValue,
  formatNumber,
  parseJson,
  parseJsonString,
} from "./json";

/** The ABI version this SDK speaks; the host sends it as `abi`. */
export const ABI_VERSION = 1;
/** Exit status when stdin is not a valid ABI v1 input. */
export const EXIT_BAD_INPUT = 2;
/** Exit status when the rule fails (`fail`, or a field of the wrong type). */
export const EXIT_RULE_ERROR = 1;

/** A segment as the host names it. */
export class SegmentRef {
  constructor(
    public id: string,
    public name: string,
  ) {}
}

/** Which rule is running; handy in log lines. */
export class RuleInfo {
  name: string = "";
  /** The rule's version as the host sent it (usually a number). */
  version: JsonValue = JsonValue.null();
}

/** A numeric custom field as read by `Customer.tryNumber`. */
export class NumberField {
  /** False when the field is absent or `null`. */
  present: bool = false;
  value: f64 = 0;
  /** Why the field is not a number; null when it is one or is absent. */
  error: string | null = null;
}

/** The customer being evaluated. */
export class Customer {
  id: string = "";
  email: string = "";
  firstName: string | null = null;
  lastName: string | null = null;
  /** Tax id or other official document number. */
  document: string | null = null;
  phone: string | null = null;
  /** The segment the customer is in now, if any. */
  segment: SegmentRef | null = null;
  /** The tenant's custom fields by name (a JSON object). */
  fields: JsonValue = JsonValue.object();

  /** A custom field's raw value; null when absent or JSON `null`. */
  field(name: string): JsonValue | null {
    const value = this.fields.get(name);
    return value == null || value.isNull() ? null : value;
  }

  /** A text field; null when absent, `null` or not a string. */
  text(name: string): string | null {
    const value = this.field(name);
    return value != null && value.kind == JsonKind.String ? value.str : null;
  }

  /** A boolean field; `fallback` when absent, `null` or not a boolean. */
  flag(name: string, fallback: bool = false): bool {
    const value = this.field(name);
    return value != null && value.kind == JsonKind.Bool ? value.bool : fallback;
  }

  /** A numeric field given as a JSON number or a decimal string such as
   * `"12500.50"` (decimal fields travel as strings), without failing. */
  tryNumber(name: string): NumberField {
    const result = new NumberField();
    const value = this.field(name);
    if (value == null) return result;
    result.present = true;
    const decimal = value.kind == JsonKind.String ? parseDecimal(value.str) : NaN;
    if (value.kind == JsonKind.Number) {
      result.value = value.num;
    } else if (!isNaN(decimal)) {
      result.value = decimal;
    } else {
      result.error = "field `" + name + "` is not a number: " + value.toString();
    }
    return result;
  }

  /** A numeric field (see `tryNumber`); `fallback` when absent or `null`.
   * Anything else (`"lots"`, `"1e9"`, `true`) fails the rule: exit status 1
   * with the field's name and value in the log. */
  number(name: string, fallback: f64 = 0): f64 {
    const result = this.tryNumber(name);
    if (result.error != null) fail(result.error!);
    return result.present ? result.value : fallback;
  }
}

/** Everything the host tells the rule. Unknown keys are ignored, so rules
 * built against v1 keep working when the host adds data. */
export class Input {
  abi: i32 = ABI_VERSION;
  customer: Customer = new Customer();
  /** The tenant's active segments a rule may assign. */
  segments: SegmentRef[] = [];
  rule: RuleInfo = new RuleInfo();
  /** The whole input document, for keys this SDK does not model (`sales`). */
  document: JsonValue = JsonValue.object();
}

/** Parses `[-+]digits[.digits]`, the shape of decimal field values; NaN for
 * anything else. Stricter than `parseFloat`, which accepts `"1e9"`, `"12abc"`
 * and `"Infinity"`. */
export function parseDecimal(text: string): f64 {
  const n = text.length;
  let i = 0;
  if (n > 0 && (text.charCodeAt(0) == 0x2d || text.charCodeAt(0) == 0x2b)) i = 1;
  const whole = i;
  while (i < n && isDigitCode(text.charCodeAt(i))) i++;
  if (i == whole) return NaN;
  if (i < n && text.charCodeAt(i) == 0x2e) {
    const fraction = ++i;
    while (i < n && isDigitCode(text.charCodeAt(i))) i++;
    if (i == fraction) return NaN;
  }
  return i == n ? parseFloat(text) : NaN;
}

function isDigitCode(c: i32): bool {
  return <u32>(c - 0x30) < 10;
}

/** The outcome of `parseInput`: an input, or why it is not a valid one. */
export class ParsedInput {
  input: Input | null = null;
  /** Empty when `input` is set. */
  error: string = "";
}

/** Reads the typed parts of the input; remembers the first problem. */
class InputReader {
  error: string = "";

  problem(path: string, expected: string): void {
    if (this.error.length == 0) {
      this.error = "invalid rule input: `" + path + "` must be " + expected;
    }
  }

  /** A required string member. */
  text(object: JsonValue, key: string, path: string): string {
    const value = object.get(key);
    if (value != null && value.kind == JsonKind.String) return value.str;
    this.problem(path, "a string");
    return "";
  }

  /** An optional string member: absent and `null` read as null. */
  optionalText(object: JsonValue, key: string, path: string): string | null {
    const value = object.get(key);
    if (value == null || value.isNull()) return null;
    if (value.kind == JsonKind.String) return value.str;
    this.problem(path, "a string or null");
    return null;
  }

  /** A required object member (`optional`: absent reads as `{}`). */
  object(object: JsonValue, key: string, path: string, optional: bool): JsonValue {
    const value = object.get(key);
    if (value != null && value.kind == JsonKind.Object) return value;
    if (value == null && optional) return JsonValue.object();
    this.problem(path, "an object");
    return JsonValue.object();
  }

  segment(value: JsonValue, path: string): SegmentRef {
    if (value.kind != JsonKind.Object) {
      this.problem(path, "an object");
      return new SegmentRef("", "");
    }
    return new SegmentRef(
      this.text(value, "id", path + ".id"),
      this.text(value, "name", path + ".name"),
    );
  }
}

/** Checks and types an input document (UTF-8 bytes at `ptr`); useful for
 * testing a rule's function on made-up inputs. */
export function parseInput(ptr: usize, length: usize): ParsedInput {
  const result = new ParsedInput();
  const parsed = parseJson(ptr, length);
  if (parsed.value == null) {
    result.error = "invalid rule input: " + parsed.error;
    return result;
  }
  const document = parsed.value!;
  if (document.kind != JsonKind.Object) {
    result.error = "invalid rule input: the document must be an object";
    return result;
  }
  const abi = document.get("abi");
  if (abi == null || abi.kind != JsonKind.Number) {
    result.error = "invalid rule input: `abi` must be a number";
    return result;
  }
  if (abi.num != <f64>ABI_VERSION) {
    result.error =
      "rule input has abi " +
      abi.toString() +
      "; this rule was built for abi " +
      ABI_VERSION.toString();
    return result;
  }

  const reader = new InputReader();
  const input = new Input();
  input.document = document;
  const c = reader.object(document, "customer", "customer", false);
  const customer = input.customer;
  customer.id = reader.text(c, "id", "customer.id");
  const email = c.get("email");
  if (email != null) customer.email = reader.text(c, "email", "customer.email");
  customer.firstName = reader.optionalText(c, "first_name", "customer.first_name");
  customer.lastName = reader.optionalText(c, "last_name", "customer.last_name");
  customer.document = reader.optionalText(c, "document", "customer.document");
  customer.phone = reader.optionalText(c, "phone", "customer.phone");
  const segment = c.get("segment");
  if (segment != null && !segment.isNull()) {
    customer.segment = reader.segment(segment, "customer.segment");
  }
  customer.fields = reader.object(c, "fields", "customer.fields", true);

  const segments = document.get("segments");
  if (segments != null && segments.kind == JsonKind.Array) {
    for (let i = 0; i < segments.length; i++) {
      input.segments.push(reader.segment(segments.at(i), "segments[" + i.toString() + "]"));
    }
  } else if (segments != null) {
    reader.problem("segments", "an array");
  }

  const rule = reader.object(document, "rule", "rule", false);
  input.rule.name = reader.text(rule, "name", "rule.name");
  const version = rule.get("version");
  if (version != null) input.rule.version = version;

  if (reader.error.length > 0) {
    result.error = reader.error;
  } else {
    result.input = input;
  }
  return result;
}

/** `parseInput` on a string (tests). */
export function parseInputString(text: string): ParsedInput {
  const bytes = String.UTF8.encode(text);
  return parseInput(changetype<usize>(bytes), <usize>bytes.byteLength);
}

/** What to do with the customer's segment. */
export enum SegmentChoice {
  /** Leave it as it is (`segment` absent from the output). */
  Unchanged,
  /** Remove the customer from any segment (`"segment": null`). */
  Clear,
  /** Move the customer to the segment named by `Output.segmentName` (name or id). */
  Set,
}

/** The rule's decision: cluster values to store on the customer and what to
 * do with its segment. */
export class Output {
  /** Cluster field name -> value (a JSON object). */
  clusters: JsonValue = JsonValue.object();
  segmentChoice: SegmentChoice = SegmentChoice.Unchanged;
  /** The segment's name or id when `segmentChoice` is `Set`. */
  segmentName: string = "";

  /** Sets one cluster field (builder style) to a string, a boolean, a number
   * or a `JsonValue`; setting a name again replaces its value. */
  cluster<T>(name: string, value: T): Output {
    let json: JsonValue;
    if (isBoolean<T>()) {
      json = JsonValue.fromBool(<bool>value);
    } else if (isInteger<T>() || isFloat<T>()) {
      json = JsonValue.fromNumber(<f64>value);
    } else if (isString<T>()) {
      json =
        isNullable<T>() && changetype<usize>(value) == 0
          ? JsonValue.null()
          : JsonValue.fromString(changetype<string>(value));
    } else if (value instanceof JsonValue) {
      json = changetype<JsonValue>(value);
    } else {
      ERROR("a cluster value is a string, a bool, a number or a JsonValue");
      unreachable();
    }
    this.clusters.set(name, json);
    return this;
  }

  /** Sets one cluster field to JSON `null` (builder style). */
  clusterNull(name: string): Output {
    this.clusters.set(name, JsonValue.null());
    return this;
  }

  /** Moves the customer to a segment, by name or id (builder style). */
  segment(nameOrId: string): Output {
    this.segmentChoice = SegmentChoice.Set;
    this.segmentName = nameOrId;
    return this;
  }

  /** Removes the customer from its segment (builder style). */
  clearSegment(): Output {
    this.segmentChoice = SegmentChoice.Clear;
    this.segmentName = "";
    return this;
  }

  /** The output document exactly as the host expects it: compact, clusters
   * sorted by name (the engine's own canonical form, as the Rust SDK writes). */
  toJson(): string {
    const clusters = this.clusters;
    const order = new Array<i32>(clusters.length);
    for (let i = 0; i < order.length; i++) {
      // Insertion sort: a rule sets a handful of clusters.
      let j = i;
      while (j > 0 && clusters.keyAt(order[j - 1]) > clusters.keyAt(i)) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = i;
    }
    const parts = new Array<string>();
    parts.push('{"clusters":{');
    for (let i = 0; i < order.length; i++) {
      if (i > 0) parts.push(",");
      writeString(parts, clusters.keyAt(order[i]));
      parts.push(":");
      parts.push(clusters.at(order[i]).toString());
    }
    parts.push("}");
    if (this.segmentChoice == SegmentChoice.Clear) {
      parts.push(',"segment":null');
    } else if (this.segmentChoice == SegmentChoice.Set) {
      parts.push(',"segment":');
      writeString(parts, this.segmentName);
    }
    parts.push("}");
    return parts.join("");
  }
}

// One iovec and the count the host writes back, reused by every host call.
// @ts-ignore: decorator
@lazy const scratch = memory.data(16, 8);

/** Writes all `length` bytes at `ptr` to `fd`: one host call unless the host
 * takes less. False when the host refuses. */
function writeAll(fd: u32, ptr: usize, length: usize): bool {
  const iov = changetype<iovec>(scratch);
  const count = scratch + offsetof<iovec>();
  while (length > 0) {
    iov.buf = ptr;
    iov.buf_len = length;
    const err = fd_write(fd, scratch, 1, count);
    if (err == errno.INTR) continue;
    const written = load<usize>(count);
    if (err != errno.SUCCESS || written == 0) return false;
    ptr += written;
    length -= written;
  }
  return true;
}

/** Writes one line to the rule's log (stderr) with one host call. Logging
 * never fails the rule; beyond the host's log limit lines are dropped. */
export function log(message: string): void {
  const line = String.UTF8.encode(message + "\n");
  writeAll(2, changetype<usize>(line), <usize>line.byteLength);
}

/** Logs `message` and ends the run with `status` (1: rule error, 2: bad input). */
export function exit(status: i32, message: string): void {
  log(message);
  proc_exit(<u32>status);
  unreachable();
}

/** Fails the rule: exit status 1 with `rule failed: <reason>` in the log. */
export function fail(reason: string): void {
  exit(EXIT_RULE_ERROR, "rule failed: " + reason);
}

/** All of stdin, left on the heap (a run is short; nothing is freed).
 * Room for a typical input up front, so reading takes two host calls (the
 * data, then end of file) instead of a series of small reads. */
class Stdin {
  ptr: usize = 0;
  length: usize = 0;
}

function readStdin(): Stdin {
  let capacity: usize = 4096;
  const stdin = new Stdin();
  stdin.ptr = heap.alloc(capacity);
  const iov = changetype<iovec>(scratch);
  const count = scratch + offsetof<iovec>();
  for (;;) {
    if (stdin.length == capacity) {
      capacity <<= 1;
      stdin.ptr = heap.realloc(stdin.ptr, capacity);
    }
    iov.buf = stdin.ptr + stdin.length;
    iov.buf_len = capacity - stdin.length;
    const err = fd_read(0, scratch, 1, count);
    if (err == errno.INTR) continue;
    if (err != errno.SUCCESS) exit(EXIT_BAD_INPUT, "cannot read stdin: " + errnoToString(err));
    const read = load<usize>(count);
    if (read == 0) break;
    stdin.length += read;
  }
  return stdin;
}

/** Runs a rule as the program's entry: reads stdin, calls `evaluate`, writes
 * its output to stdout. A bad input exits with status 2 and the reason in
 * the log; a rule fails with `fail` (status 1). */
export function run(evaluate: (input: Input) => Output): void {
  const stdin = readStdin();
  const parsed = parseInput(stdin.ptr, stdin.length);
  if (parsed.input == null) exit(EXIT_BAD_INPUT, parsed.error);
  const output = evaluate(parsed.input!);
  const json = String.UTF8.encode(output.toJson());
  if (!writeAll(1, changetype<usize>(json), <usize>json.byteLength)) {
    exit(EXIT_RULE_ERROR, "cannot write output");
  }
}
