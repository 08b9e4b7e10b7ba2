// The SDK's tests: builds tests/unit.ts and tests/rule.ts with the pinned
// compiler and the release options of the examples, and runs them under
// Node's WASI preview1 (`npm test`; `npm ci` first).
import { execFileSync } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { WASI } from "node:wasi";

const sdk = new URL("..", import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), "rule-sdk-test-"));
const modules = {};

/** asc with the WASI shim, -O3 and the stub runtime, as the examples build. */
function build(name) {
  const out = join(work, `${name}.wasm`);
  execFileSync(
    join(sdk, "node_modules/.bin/asc"),
    [
      `tests/${name}.ts`,
      "--config", "node_modules/@assemblyscript/wasi-shim/asconfig.json",
      "--runtime", "stub", "-O3", "--outFile", out,
    ],
    { cwd: sdk, stdio: ["ignore", "inherit", "inherit"] },
  );
  return new WebAssembly.Module(readFileSync(out));
}

/** Runs `module` with `stdin` as a rule would be: its exit status, stdout, stderr. */
async function runRule(module, stdin) {
  const files = ["stdin", "stdout", "stderr"].map((n) => join(work, `${n}-${process.hrtime.bigint()}`));
  writeFileSync(files[0], stdin);
  const fds = [openSync(files[0], "r"), openSync(files[1], "w"), openSync(files[2], "w")];
  const wasi = new WASI({
    version: "preview1",
    args: ["rule"],
    env: {},
    stdin: fds[0],
    stdout: fds[1],
    stderr: fds[2],
    returnOnExit: true,
  });
  const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
  const status = wasi.start(instance);
  fds.forEach(closeSync);
  const [stdout, stderr] = files.slice(1).map((f) => readFileSync(f, "utf8"));
  return { status, stdout, stderr };
}

function input(fields, extra = {}) {
  return JSON.stringify({
    abi: 1,
    customer: { id: "cust-1", email: "ana@example.com", segment: null, fields },
    segments: [{ id: "seg-1", name: "retail" }, { id: "seg-2", name: "gold" }],
    rule: { name: "t", version: 1 },
    ...extra,
  });
}

before(() => {
  modules.unit = build("unit");
  modules.rule = build("rule");
});
after(() => rmSync(work, { recursive: true, force: true }));

test("the helpers' checks inside the module pass", async () => {
  const { status, stderr } = await runRule(modules.unit, "");
  assert.equal(status, 0, stderr);
  assert.match(stderr, /all checks passed/);
});

test("the module imports only WASI preview1 and exports _start and memory", () => {
  for (const module of [modules.unit, modules.rule]) {
    const imports = WebAssembly.Module.imports(module);
    assert.ok(imports.length > 0);
    for (const { module: from, name } of imports) {
      assert.equal(from, "wasi_snapshot_preview1", name);
      assert.ok(name !== "poll_oneoff" && !name.startsWith("sock_"), name);
    }
    const exports = WebAssembly.Module.exports(module).map((e) => `${e.name}:${e.kind}`);
    assert.deepEqual(exports.sort(), ["_start:function", "memory:memory"]);
  }
});

test("run writes exactly one output document", async () => {
  const { status, stdout } = await runRule(modules.rule, input({ revenue: "12.5" }));
  assert.equal(status, 0);
  assert.equal(stdout, '{"clusters":{"id":"cust-1","revenue":12.5,"segments":2}}');
});

test("the segment is set by name or cleared", async () => {
  const set = await runRule(modules.rule, input({ mode: "set" }));
  assert.deepEqual(JSON.parse(set.stdout).segment, "gold");
  const clear = await runRule(modules.rule, input({ mode: "clear" }));
  assert.equal(JSON.parse(clear.stdout).segment, null);
  assert.ok("segment" in JSON.parse(clear.stdout));
});

test("a rule error exits with status 1 and its reason in the log", async () => {
  const failed = await runRule(modules.rule, input({ mode: "fail" }));
  assert.deepEqual([failed.status, failed.stdout], [1, ""]);
  assert.equal(failed.stderr, "rule failed: asked to fail\n");
  const field = await runRule(modules.rule, input({ revenue: "1e9" }));
  assert.equal(field.status, 1);
  assert.equal(field.stderr, 'rule failed: field `revenue` is not a number: "1e9"\n');
});

test("a bad input exits with status 2 and the reason in the log", async () => {
  for (const [stdin, reason] of [
    ["customer=1", "invalid rule input: expected value at byte 0"],
    ["", "invalid rule input: EOF while parsing a value at byte 0"],
    [input({}, { abi: 2 }), "rule input has abi 2; this rule was built for abi 1"],
    [input({}, { customer: { email: "x" } }), "invalid rule input: `customer.id` must be a string"],
    [input({}) + " {}", "invalid rule input: trailing characters at byte"],
  ]) {
    const { status, stdout, stderr } = await runRule(modules.rule, stdin);
    assert.deepEqual([status, stdout], [2, ""], stdin);
    assert.ok(stderr.startsWith(reason), `${stdin}: ${stderr}`);
  }
});

test("a large input is read whole", async () => {
  const padding = "x".repeat(100 * 1024);
  const { status, stdout, stderr } = await runRule(modules.rule, input({ padding, revenue: 7 }));
  assert.equal(status, 0, stderr);
  assert.equal(JSON.parse(stdout).clusters.revenue, 7);
});

test("throw aborts with status 255 (rules use fail instead)", async () => {
  const { status, stderr } = await runRule(modules.rule, input({ mode: "throw" }));
  assert.equal(status, 255);
  assert.match(stderr, /^abort: thrown in tests\/rule\.ts/);
});
