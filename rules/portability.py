#!/usr/bin/env python3
"""Portability check: the example rules behave the same outside the product.

The rule ABI (rules/README.md) promises that a module runs unchanged under a stock
wasmtime (`wasmtime run rule.wasm < input.json`). This script checks it: for every
module named in rules/examples/cases.json and every case there, it runs the module

  * under wasmtime from PyPI (wasmtime-py: wasmtime's C API with wasmtime-wasi, an
    embedding independent of the engine's own preview1 host), with the ABI's sandbox:
    argv ["rule"], no environment, no preopens, stdin/stdout/stderr as files, and a
    fuel limit so a broken module cannot hang the suite; and
  * under the product's engine: `rule-engine run MODULE --input FILE --json`;

and fails unless both give the case's expected result with the same exit status, the
same log, and (on success) the same output document: equal as parsed JSON, and equal
byte for byte when the module printed canonical JSON (compact, sorted keys, which is
how the engine re-serialises the output it parsed).

    .venv/bin/python rules/portability.py [--wasm-dir DIR] [--rule-engine PATH] [--cases FILE]

Needs the modules (rules/build-examples.sh) and the runner (cargo build -p
rule-engine). Exit status: 0 all agree, 1 a case differs, 2 something is missing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

RULES = Path(__file__).resolve().parent
REPO = RULES.parent
CASES = RULES / "examples" / "cases.json"

# The product's default fuel (Limits::DEFAULT_FUEL): a module that fits the product
# fits here too, and a runaway one stops.
FUEL = 11_000_000
CASE_KEYS = {"name", "fields", "sales", "set", "remove", "stdin", "expect"}
EXIT_MESSAGE = re.compile(r"^rule exited with status (\d+)$")


class CannotCheck(Exception):
    """Something the check needs is missing or malformed (exit status 2)."""


@dataclass
class Run:
    """What one runtime made of one case."""

    status: Optional[int]  # the exit status; None when the rule failed otherwise
    failure: str  # why, when it failed without an exit status
    stdout: Optional[bytes]  # the output as written (wasmtime-py) or re-serialised (engine)
    log: str

    def describe(self) -> str:
        if self.status is None:
            return f"failed: {self.failure}"
        return f"exit status {self.status}"


def canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def case_input(base: dict, case: dict) -> bytes:
    """The bytes a case sends to stdin (the expansion cases.json's `about` describes)."""
    unknown = set(case) - CASE_KEYS
    if unknown:
        raise CannotCheck(f"case {case.get('name')!r}: unknown keys {sorted(unknown)}")
    if ("output" in case["expect"]) == ("exit" in case["expect"]):
        raise CannotCheck(f"case {case['name']!r} must expect either `output` or `exit`")
    if "stdin" in case:
        return case["stdin"].encode()
    document = copy.deepcopy(base)
    if "fields" in case:
        document["customer"]["fields"] = case["fields"]
    if "sales" in case:
        document["sales"] = case["sales"]
    for pointer, value in case.get("set", {}).items():
        parent, key = parent_of(document, pointer)
        parent[key] = value
    for pointer in case.get("remove", []):
        parent, key = parent_of(document, pointer)
        del parent[key]
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def parent_of(document: dict, pointer: str) -> tuple[dict, str]:
    """The object holding a JSON pointer's last key (no `~` escapes), and that key."""
    *path, key = pointer.split("/")[1:]
    for step in path:
        document = document[step]
    return document, key


def run_wasmtime_py(wasmtime: Any, engine: Any, module: Any, stdin: Path, scratch: Path) -> Run:
    stdout, stderr = scratch / "stdout", scratch / "stderr"
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["rule"]
    wasi.stdin_file = str(stdin)
    wasi.stdout_file = str(stdout)
    wasi.stderr_file = str(stderr)
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    store.set_fuel(FUEL)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    status, failure = 0, ""
    try:
        instance = linker.instantiate(store, module)
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as exited:
        status = exited.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as error:
        # The last line is the cause (e.g. "wasm trap: all fuel consumed by WebAssembly").
        status, failure = None, str(error).strip().splitlines()[-1].strip()
    del store
    return Run(status, failure, stdout.read_bytes(), stderr.read_bytes().decode(errors="replace"))


def run_engine(runner: Path, wasm: Path, stdin: Path) -> Run:
    done = subprocess.run(
        [str(runner), "run", str(wasm), "--input", str(stdin), "--json"],
        capture_output=True,
        timeout=60,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return Run(None, f"runner exited {done.returncode}: {done.stderr.decode()}", None, "")
    if report["ok"]:
        return Run(0, "", canonical(report["output"]), report["logs"])
    error = report["error"]
    exited = EXIT_MESSAGE.match(error["message"]) if error["code"] == "exit" else None
    if exited:
        return Run(int(exited.group(1)), "", None, report["logs"])
    return Run(None, f"{error['code']}: {error['message']}", None, report["logs"])


def compare(case: dict, portable: Run, product: Run) -> tuple[list[str], bool]:
    """What differs (empty when nothing does), and whether the output was byte-compared."""
    expect = case["expect"]
    problems = []
    byte_compared = False
    for runtime, run in (("wasmtime-py", portable), ("rule-engine", product)):
        wanted = expect.get("exit", 0)
        if run.status != wanted:
            problems.append(f"{runtime}: expected exit status {wanted}, got {run.describe()}")
        if "log" in expect and expect["log"] not in run.log:
            problems.append(f"{runtime}: the log lacks {expect['log']!r}: {run.log!r}")
    if portable.status != product.status:
        problems.append(
            f"exit statuses differ: wasmtime-py {portable.describe()}, rule-engine {product.describe()}"
        )
    if portable.log != product.log:
        problems.append(f"logs differ: wasmtime-py {portable.log!r}, rule-engine {product.log!r}")
    if portable.status == 0 and product.status == 0:
        try:
            document = json.loads(portable.stdout)
        except ValueError as error:
            problems.append(f"wasmtime-py: stdout is not one JSON document ({error}): {portable.stdout!r}")
        else:
            if "output" in expect and document != expect["output"]:
                problems.append(f"wasmtime-py: expected output {expect['output']}, got {document}")
            if document != json.loads(product.stdout):
                problems.append(
                    f"outputs differ: wasmtime-py {portable.stdout!r}, rule-engine {product.stdout!r}"
                )
            elif portable.stdout.strip() == canonical(document):
                byte_compared = True
                if portable.stdout.strip() != product.stdout:
                    problems.append(
                        f"outputs differ in bytes: wasmtime-py {portable.stdout!r}, "
                        f"rule-engine {product.stdout!r}"
                    )
    return problems, byte_compared


def check_module(
    wasmtime: Any, engine: Any, runner: Path, wasm: Path, suite: dict, base: dict
) -> tuple[list[str], int, int]:
    """Runs one module on its suite's cases: the problems, how many cases differ, and in
    how many the output was compared byte for byte."""
    module = wasmtime.Module.from_file(engine, str(wasm))
    with tempfile.TemporaryDirectory(prefix=f"portability-{wasm.stem}-") as scratch_dir:
        scratch = Path(scratch_dir)
        inputs = []
        for index, case in enumerate(suite["cases"]):
            path = scratch / f"input-{index}.json"
            path.write_bytes(case_input(base, case))
            inputs.append(path)
        # The engine's runner compiles the module for every case: run two at a time.
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            products = [pool.submit(run_engine, runner, wasm, path) for path in inputs]
            portables = [run_wasmtime_py(wasmtime, engine, module, path, scratch) for path in inputs]
            products = [future.result() for future in products]
    problems, differing, byte_compared = [], 0, 0
    for case, portable, product in zip(suite["cases"], portables, products):
        differences, compared = compare(case, portable, product)
        differing += bool(differences)
        byte_compared += compared
        problems += [f"{wasm.stem} / {case['name']}: {difference}" for difference in differences]
    return problems, differing, byte_compared


def main() -> int:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wasm-dir",
        type=Path,
        default=Path(os.environ.get("RULES_WASM_DIR", REPO / "target" / "rules-wasm")),
        help="where rules/build-examples.sh put the modules (default: $RULES_WASM_DIR or target/rules-wasm)",
    )
    parser.add_argument(
        "--rule-engine",
        type=Path,
        default=target / "debug" / "rule-engine",
        help="the product's runner (default: $CARGO_TARGET_DIR/debug/rule-engine)",
    )
    parser.add_argument("--cases", type=Path, default=CASES, help="the cases (default: %(default)s)")
    args = parser.parse_args()

    try:
        import wasmtime
    except ImportError:
        raise CannotCheck("the wasmtime package is not installed: run ./infra/setup.sh")
    if not args.rule_engine.is_file():
        raise CannotCheck(f"{args.rule_engine} is missing: build it with `cargo build -p rule-engine`")
    fixture = json.loads(args.cases.read_text())
    modules = [(name, suite) for suite in fixture["suites"] for name in suite["modules"]]
    missing = [name for name, _ in modules if not (args.wasm_dir / f"{name}.wasm").is_file()]
    if missing:
        raise CannotCheck(
            f"{', '.join(missing)} not built in {args.wasm_dir}: run rules/build-examples.sh"
        )

    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    print(f"portability: wasmtime-py {importlib.metadata.version('wasmtime')} against {args.rule_engine}")
    problems = []
    for name, suite in modules:
        started = time.monotonic()
        found, differing, byte_compared = check_module(
            wasmtime, engine, args.rule_engine, args.wasm_dir / f"{name}.wasm", suite, fixture["base_input"]
        )
        cases = len(suite["cases"])
        verdict = f"{differing} differ" if differing else "all agree"
        print(
            f"  {name}: {cases} cases ({suite['name']}), {verdict}; "
            f"output bytes compared in {byte_compared}; {time.monotonic() - started:.1f} s"
        )
        problems += found
    for problem in problems:
        print(f"DIFFERS {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CannotCheck as why:
        print(f"portability: {why}", file=sys.stderr)
        sys.exit(2)
