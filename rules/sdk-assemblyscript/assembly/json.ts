// A small JSON reader and writer for rule inputs and outputs.
//
// Why not a JSON package: AssemblyScript has no catchable exceptions, so a
// parser that throws on malformed text aborts the module (exit status 255)
// instead of letting `run` report a bad input with status 2. This reader
// returns its error instead, builds a plain tree (inputs are at most 128 KiB)
// and needs no compiler transform.

/** What a `JsonValue` holds. */
export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** Nesting deeper than this is refused (a bad input), never a stack overflow. */
const MAX_DEPTH = 128;

/** One JSON value of any kind; read the field that matches `kind`. */
export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  // Only arrays and objects allocate these: most values are scalars.
  private values: JsonValue[] | null = null;
  private names: string[] | null = null;

  static null(): JsonValue {
    return new JsonValue();
  }

  static fromBool(value: bool): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Bool;
    v.bool = value;
    return v;
  }

  static fromNumber(value: f64): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = value;
    return v;
  }

  static fromString(value: string): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.String;
    v.str = value;
    return v;
  }

  /** An empty object; add members with `set`. */
  static object(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    v.values = [];
    v.names = [];
    return v;
  }

  /** An empty array; add elements with `push`. */
  static array(): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    v.values = [];
    return v;
  }

  /** An object with these members, duplicates kept (`get` reads the last). */
  static fromMembers(keys: string[], values: JsonValue[]): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    v.names = keys;
    v.values = values;
    return v;
  }

  /** An array of these elements. */
  static fromItems(values: JsonValue[]): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    v.values = values;
    return v;
  }

  isNull(): bool {
    return this.kind == JsonKind.Null;
  }

  /** Elements of an array, members of an object; 0 for anything else. */
  get length(): i32 {
    const values = this.values;
    return values == null ? 0 : values.length;
  }

  /** The element (array) or member value (object) at `index`. */
  at(index: i32): JsonValue {
    return this.values![index];
  }

  /** The key of the object member at `index`. */
  keyAt(index: i32): string {
    return this.names![index];
  }

  /** A member of an object, or null when absent or when this is no object.
   * The last of duplicate keys wins, as in serde_json. */
  get(key: string): JsonValue | null {
    const names = this.names;
    if (names == null) return null;
    for (let i = names.length - 1; i >= 0; i--) {
      if (names[i] == key) return this.values![i];
    }
    return null;
  }

  /** Sets an object member, replacing one of the same name (objects only). */
  set(key: string, value: JsonValue): void {
    const names = this.names;
    if (names == null) return;
    for (let i = 0; i < names.length; i++) {
      if (names[i] == key) {
        this.values![i] = value;
        return;
      }
    }
    names.push(key);
    this.values!.push(value);
  }

  /** Appends an element (arrays only). */
  push(value: JsonValue): void {
    if (this.kind == JsonKind.Array) this.values!.push(value);
  }

  /** The value as compact JSON text. */
  toString(): string {
    const parts = new Array<string>();
    writeValue(parts, this);
    return parts.join("");
  }
}

/** Writes a number as JSON: integers without a fraction (`150000`, as Rust's
 * `Display` prints them), other finite values as the shortest round-trip text;
 * NaN and infinities become `null`, as serde_json writes them. */
export function formatNumber(value: f64): string {
  if (!isFinite(value)) return "null";
  if (value == Math.trunc(value) && Math.abs(value) < 1e15) {
    return (<i64>value).toString();
  }
  return value.toString();
}

/** Appends `text` as a JSON string literal. */
export function writeString(parts: string[], text: string): void {
  parts.push('"');
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    if (i > start) parts.push(text.substring(start, i));
    start = i + 1;
    if (c == 0x22) parts.push('\\"');
    else if (c == 0x5c) parts.push("\\\\");
    else if (c == 0x0a) parts.push("\\n");
    else if (c == 0x0d) parts.push("\\r");
    else if (c == 0x09) parts.push("\\t");
    else parts.push("\\u00" + (c < 0x10 ? "0" : "") + c.toString(16));
  }
  if (start < text.length) parts.push(text.substring(start));
  parts.push('"');
}

function writeValue(parts: string[], value: JsonValue): void {
  switch (value.kind) {
    case JsonKind.Null:
      parts.push("null");
      break;
    case JsonKind.Bool:
      parts.push(value.bool ? "true" : "false");
      break;
    case JsonKind.Number:
      parts.push(formatNumber(value.num));
      break;
    case JsonKind.String:
      writeString(parts, value.str);
      break;
    case JsonKind.Array:
      parts.push("[");
      for (let i = 0; i < value.length; i++) {
        if (i > 0) parts.push(",");
        writeValue(parts, value.at(i));
      }
      parts.push("]");
      break;
    default:
      parts.push("{");
      for (let i = 0; i < value.length; i++) {
        if (i > 0) parts.push(",");
        writeString(parts, value.keyAt(i));
        parts.push(":");
        writeValue(parts, value.at(i));
      }
      parts.push("}");
  }
}

/** The outcome of `parseJson`: a value, or why the text is not JSON. */
export class JsonParse {
  value: JsonValue | null = null;
  /** Empty when `value` is set. */
  error: string = "";
}

/** Parses one JSON document (RFC 8259) from `length` UTF-8 bytes at `ptr`;
 * whitespace may surround it, nothing else may follow it. */
export function parseJson(ptr: usize, length: usize): JsonParse {
  const reader = new Reader(ptr, ptr + length);
  const result = new JsonParse();
  reader.skipSpace();
  const value = reader.value(0);
  if (value != null) {
    reader.skipSpace();
    if (reader.pos < reader.end) {
      reader.fail("trailing characters");
    } else {
      result.value = value;
      return result;
    }
  }
  result.error = reader.error + " at byte " + (reader.pos - ptr).toString();
  return result;
}

/** Parses JSON text held in a string (handy in tests). */
export function parseJsonString(text: string): JsonParse {
  const bytes = String.UTF8.encode(text);
  return parseJson(changetype<usize>(bytes), <usize>bytes.byteLength);
}

// @ts-ignore: decorator
@inline
function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}

/** A string from `length` bytes at `ptr`. ASCII (the usual key or value) is
 * widened in one tight loop; anything else goes through the UTF-8 decoder. */
function decodeString(ptr: usize, length: usize, ascii: bool): string {
  if (!ascii) return String.UTF8.decodeUnsafe(ptr, length);
  const text = changetype<usize>(__new(length << 1, idof<String>()));
  for (let i: usize = 0; i < length; i++) {
    store<u16>(text + (i << 1), load<u8>(ptr + i));
  }
  return changetype<string>(text);
}

class Reader {
  pos: usize;
  end: usize;
  error: string = "";

  constructor(pos: usize, end: usize) {
    this.pos = pos;
    this.end = end;
  }

  /** The byte at the cursor, or -1 at the end. */
  peek(): i32 {
    return this.pos < this.end ? <i32>load<u8>(this.pos) : -1;
  }

  /** Records the first error; returns null for the caller to pass up. */
  fail(message: string): JsonValue | null {
    if (this.error.length == 0) this.error = message;
    return null;
  }

  skipSpace(): void {
    let pos = this.pos;
    const end = this.end;
    while (pos < end) {
      const c = load<u8>(pos);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  literal(word: string, value: JsonValue): JsonValue | null {
    const n = <usize>word.length;
    if (this.end - this.pos < n) return this.fail("expected value");
    for (let i: usize = 0; i < n; i++) {
      if (<u32>load<u8>(this.pos + i) != <u32>word.charCodeAt(<i32>i)) {
        return this.fail("expected value");
      }
    }
    this.pos += n;
    return value;
  }

  value(depth: i32): JsonValue | null {
    const c = this.peek();
    if (c == 0x7b) return this.object(depth + 1);
    if (c == 0x5b) return this.array(depth + 1);
    if (c == 0x22) {
      const text = this.string();
      return text == null ? null : JsonValue.fromString(text);
    }
    if (c == 0x74) return this.literal("true", JsonValue.fromBool(true));
    if (c == 0x66) return this.literal("false", JsonValue.fromBool(false));
    if (c == 0x6e) return this.literal("null", JsonValue.null());
    if (c == 0x2d || isDigit(<u32>c)) return this.number();
    return this.fail(c < 0 ? "EOF while parsing a value" : "expected value");
  }

  object(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("recursion limit exceeded");
    this.pos++; // {
    const keys = new Array<string>();
    const values = new Array<JsonValue>();
    this.skipSpace();
    if (this.peek() == 0x7d) {
      this.pos++;
      return JsonValue.fromMembers(keys, values);
    }
    for (;;) {
      if (this.peek() != 0x22) return this.fail("key must be a string");
      const key = this.string();
      if (key == null) return null;
      this.skipSpace();
      if (this.peek() != 0x3a) return this.fail("expected `:`");
      this.pos++;
      this.skipSpace();
      const member = this.value(depth);
      if (member == null) return null;
      keys.push(key);
      values.push(member);
      this.skipSpace();
      const c = this.peek();
      if (c != 0x2c && c != 0x7d) return this.fail("expected `,` or `}`");
      this.pos++;
      if (c == 0x7d) return JsonValue.fromMembers(keys, values);
      this.skipSpace();
    }
    return null; // not reached
  }

  array(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("recursion limit exceeded");
    this.pos++; // [
    const values = new Array<JsonValue>();
    this.skipSpace();
    if (this.peek() == 0x5d) {
      this.pos++;
      return JsonValue.fromItems(values);
    }
    for (;;) {
      const item = this.value(depth);
      if (item == null) return null;
      values.push(item);
      this.skipSpace();
      const c = this.peek();
      if (c != 0x2c && c != 0x5d) return this.fail("expected `,` or `]`");
      this.pos++;
      if (c == 0x5d) return JsonValue.fromItems(values);
      this.skipSpace();
    }
    return null; // not reached
  }

  /** -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)? */
  number(): JsonValue | null {
    const start = this.pos;
    const negative = this.peek() == 0x2d;
    if (negative) this.pos++;
    const whole = this.pos;
    if (this.peek() == 0x30) {
      this.pos++;
    } else if (this.digits() == 0) {
      return this.fail("invalid number");
    }
    let integer = true;
    if (this.peek() == 0x2e) {
      integer = false;
      this.pos++;
      if (this.digits() == 0) return this.fail("invalid number");
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      integer = false;
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (this.digits() == 0) return this.fail("invalid number");
    }
    // Integers up to 15 digits (ids, counts, years) are exact in an f64:
    // summed here, without the general decimal conversion.
    if (integer && this.pos - whole <= 15) {
      let sum: i64 = 0;
      for (let p = whole; p < this.pos; p++) sum = sum * 10 + <i64>(load<u8>(p) - 0x30);
      return JsonValue.fromNumber(negative ? -(<f64>sum) : <f64>sum);
    }
    const value = parseFloat(decodeString(start, this.pos - start, true));
    if (!isFinite(value)) return this.fail("number out of range");
    return JsonValue.fromNumber(value);
  }

  digits(): i32 {
    let pos = this.pos;
    const start = pos;
    while (pos < this.end && isDigit(<u32>load<u8>(pos))) pos++;
    this.pos = pos;
    return <i32>(pos - start);
  }

  hex4(): i32 {
    if (this.end - this.pos < 4) return -1;
    let code = 0;
    for (let i = 0; i < 4; i++) {
      const c = <i32>load<u8>(this.pos++);
      let digit: i32;
      if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) digit = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) digit = c - 0x41 + 10;
      else return -1;
      code = (code << 4) | digit;
    }
    return code;
  }

  /** A string literal at the cursor (at `"`), escapes decoded. */
  string(): string | null {
    let pos = this.pos + 1; // after "
    const end = this.end;
    let text = "";
    let run = pos;
    let ascii = true;
    for (;;) {
      if (pos >= end) {
        this.pos = pos;
        this.fail("EOF while parsing a string");
        return null;
      }
      const c = load<u8>(pos);
      if (c == 0x22) break;
      if (c < 0x20) {
        this.pos = pos;
        this.fail("control character in string");
        return null;
      }
      if (c != 0x5c) {
        ascii = ascii && c < 0x80;
        pos++;
        continue;
      }
      // An escape: keep the plain run before it, then decode.
      if (pos + 1 >= end) {
        this.pos = end;
        this.fail("EOF while parsing a string");
        return null;
      }
      text += decodeString(run, pos - run, ascii);
      const e = load<u8>(pos + 1);
      this.pos = pos + 2;
      if (e == 0x22) text += '"';
      else if (e == 0x5c) text += "\\";
      else if (e == 0x2f) text += "/";
      else if (e == 0x62) text += "\b";
      else if (e == 0x66) text += "\f";
      else if (e == 0x6e) text += "\n";
      else if (e == 0x72) text += "\r";
      else if (e == 0x74) text += "\t";
      else if (e == 0x75) {
        const unit = this.hex4();
        if (unit < 0) {
          this.fail("invalid \\u escape");
          return null;
        }
        text += String.fromCharCode(unit);
      } else {
        this.fail("invalid escape");
        return null;
      }
      pos = this.pos;
      run = pos;
      ascii = true;
    }
    const last = decodeString(run, pos - run, ascii);
    this.pos = pos + 1; // after "
    return text.length == 0 ? last : text + last;
  }
}
