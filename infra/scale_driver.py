"""The scenarios of `infra/scale.sh`: HTTP calls against the local stack, each scenario
between two marks in moto's call trace, with its results appended as one JSON line to
the results file for `infra/scale_report.py`.

Every scenario works in a tenant of its own (`<run>-<scenario>`), so its keys, counts
and partitions are its own. A window ends once the stream poller of `local-stack` has
been idle for `--idle` seconds (no "stream batch handled" line in its log) and the
counts the stream keeps show the scenario's customers: the calls the scenario caused
through the stream (the counting, the rules) are in the window. The wait makes no call
of its own, and the end mark is set before each look at the counts, so that a look
that finds them exact is not in the window (a mark set again replaces the earlier one).

Usage: .venv/bin/python infra/scale_driver.py --url URL --quiet-url URL --moto URL
       --bin DIR --log FILE --results FILE --run ID SCENARIO [options]
(see `--help` of each scenario; `infra/scale.sh` runs them all).
"""

import argparse
import collections
import csv
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

CLUSTER_FIELDS = [
    {"name": "tier", "type": "enum", "values": ["AA", "A", "B"], "cluster": True},
    {"name": "distributor", "type": "boolean", "cluster": True},
]
# What the tiering rule (rules/examples/tier-rust) reads.
RULE_INPUTS = [
    {"name": "annual_revenue", "type": "string"},
    {"name": "customer_type", "type": "string"},
]
# local-stack may colour its log (ANSI escapes around field names).
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BATCH_LINE = re.compile(r"stream batch handled.*\brecords=(\d+).*\bms=(\d+)")


def fail(message):
    sys.exit(f"scale_driver: {message}")


def http(method, url, token=None, body=None, content_type="application/json"):
    """(status, JSON answer or None) of one request; error statuses are answers too."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("content-type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text or b"null")
    except ValueError:
        return status, None


class Stack:
    """The local stack of one run: both local-stack instances, moto, the binaries, the
    main instance's log and the results file."""

    def __init__(self, args):
        self.url = args.url
        self.quiet_url = args.quiet_url
        self.moto = args.moto
        self.bin = args.bin
        self.log = StreamLog(args.log)
        self.idle = args.idle
        self.results = args.results
        self.run = args.run

    def tenant(self, scenario, url=None):
        return Tenant(self, f"{self.run}-{scenario}", url or self.url)

    def mark(self, label):
        """A marker line in the trace; the trace file is flushed up to it."""
        status, answer = http("POST", f"{self.moto}/_emulation/trace/mark", body={"label": label})
        if status != 200:
            fail(f"marking the trace answered {status}: {answer}")

    def end_window(self, label, done, limit=900):
        """Marks the end of the window `label` once the stream is idle and `done()`."""
        deadline = time.monotonic() + limit
        while True:
            self.log.wait_idle(self.idle)
            self.mark(label)
            if done():
                return
            if time.monotonic() > deadline:
                fail(f"{label}: the stream did not catch up within {limit} s")

    def record(self, result):
        with open(self.results, "a", encoding="utf-8") as file:
            file.write(json.dumps(result) + "\n")
        print(f"  {result['scenario']}: {summary(result)}", flush=True)


class Tenant:
    """API calls as one tenant, with a dev token."""

    def __init__(self, stack, name, url):
        self.name = name
        self.url = url
        token = subprocess.run(
            [os.path.join(stack.bin, "local-stack"), "token", name, "--ttl-seconds", "7200"],
            check=True, capture_output=True, text=True,
        )
        self.token = token.stdout.strip()

    def call(self, method, path, body=None, **options):
        return http(method, self.url + path, self.token, body, **options)

    def expect(self, status, method, path, body=None, **options):
        got, answer = self.call(method, path, body, **options)
        if got != status:
            fail(f"{self.name}: {method} {path} answered {got}, expected {status}: {answer}")
        return answer

    def setup(self, fields):
        """Creates the fields and a segment; returns the segment's id."""
        for field in fields:
            self.expect(201, "POST", "/fields", field)
        return self.expect(201, "POST", "/segments", {"name": "scale"})["id"]

    def tiering_rule(self, wasm):
        """The `tiering` rule with the example module, disabled (nothing starts yet)."""
        rule = {"outputs": ["tier", "distributor"], "enabled": False}
        self.expect(201, "PUT", "/rules/tiering", rule)
        with open(wasm, "rb") as file:
            module = file.read()
        self.expect(201, "PUT", "/rules/tiering/module", module, content_type="application/wasm")

    def job(self):
        """The newest backfill job of `tiering`."""
        return self.expect(200, "GET", "/rules/tiering/backfill")["items"][0]


class StreamLog:
    """The "stream batch handled" lines of local-stack's log (RUST_LOG must enable
    `local_stack::streams=debug`), read as the log grows."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.batches = []  # (records, ms), in the order handled

    def read(self):
        """Reads the whole lines written since the last read; returns how many batches
        have been handled so far."""
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            text = file.read()
        whole = text[: text.rfind(b"\n") + 1]
        self.offset += len(whole)
        for line in whole.decode(errors="replace").splitlines():
            match = BATCH_LINE.search(ANSI.sub("", line))
            if match:
                self.batches.append((int(match[1]), int(match[2])))
        return len(self.batches)

    def wait_idle(self, quiet):
        """Returns once no batch has been handled for `quiet` seconds."""
        seen, since = self.read(), time.monotonic()
        while time.monotonic() - since < quiet:
            time.sleep(0.1)
            if self.read() != seen:
                seen, since = len(self.batches), time.monotonic()

    def wait_batch(self, seen, limit):
        """The first batch handled after the `seen` first ones: (records, ms)."""
        deadline = time.monotonic() + limit
        while self.read() <= seen:
            if time.monotonic() > deadline:
                fail(f"no stream batch was handled within {limit} s")
            time.sleep(0.005)  # the end mark should beat the poller's next batch
        return self.batches[seen]


def customer(i, segment=None, fields=None):
    """The body of customer `i`: `c00042`, `c00042@example.com`."""
    body = {"id": f"c{i:05d}", "email": f"c{i:05d}@example.com", "first_name": "Scale"}
    if segment:
        body["segment_id"] = segment
    body["fields"] = fields or {}
    return body


def rule_inputs(i):
    """What the tiering rule reads, spread over its three tiers and both types."""
    return {
        "annual_revenue": str((i * 7_919) % 250_000),
        "customer_type": "distributor" if i % 3 == 0 else "retail",
    }


def create_all(tenant, bodies, writers):
    """POSTs every body with `writers` requests in flight. Returns the statuses and
    each request's (start, end) on the monotonic clock that moto's trace uses."""

    def create(body):
        started = time.monotonic()
        status, _ = tenant.call("POST", "/customers", body)
        return status, [round(started, 6), round(time.monotonic(), 6)]

    with ThreadPoolExecutor(max_workers=writers) as pool:
        answers = list(pool.map(create, bodies))
    statuses = collections.Counter(str(status) for status, _ in answers)
    return dict(statuses), [interval for _, interval in answers]


def wait_for(tenant, path, done, limit=300):
    """Polls `GET path` (outside any window) until `done(answer)`; returns the answer."""
    deadline = time.monotonic() + limit
    while True:
        status, answer = tenant.call("GET", path)
        if status == 200 and done(answer):
            return answer
        if time.monotonic() > deadline:
            fail(f"{tenant.name}: GET {path} not there within {limit} s: {answer}")
        time.sleep(0.25)


def counted(tenant, path, name, expected):
    """Whether the count `name` of `GET path`, kept by the stream, is `expected`."""
    status, answer = tenant.call("GET", path)
    return status == 200 and answer[name] == expected


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def import_csv(stack, tenant, path, rows_per_request, concurrency):
    """Runs import-customers; returns its counts (`created`, ... `failed`), exit status
    and seconds."""
    command = [
        os.path.join(stack.bin, "import-customers"), "--url", tenant.url, "--token", tenant.token,
        "--rows-per-request", str(rows_per_request), "--concurrency", str(concurrency), path,
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.monotonic() - started
    counts = re.search(r"created (\S+) updated (\S+) unchanged (\S+) failed (\S+)", done.stdout)
    if counts is None:
        fail(f"import-customers printed no counts (exit {done.returncode}): {done.stderr}")
    names = ("created", "updated", "unchanged", "failed")
    statuses = {name: int(value.replace(",", "")) for name, value in zip(names, counts.groups())}
    statuses["exit"] = done.returncode
    return statuses, seconds


def seconds_between(start, end):
    parse = datetime.datetime.fromisoformat
    return (parse(end) - parse(start)).total_seconds()


# ---------------------------------------------------------------------------------
# Scenarios


def creates(stack, args):
    """N creates into one segment, every customer in the same value of both cluster
    fields (the most items they could share), at W writers."""
    tenant = stack.tenant(args.scenario)
    segment = tenant.setup(CLUSTER_FIELDS)
    fields = {"tier": "AA", "distributor": True}
    bodies = [customer(i, segment, fields) for i in range(args.count)]
    stack.log.wait_idle(stack.idle)
    stack.mark(f"{args.scenario} start")
    started = time.monotonic()
    statuses, requests = create_all(tenant, bodies, args.writers)
    seconds = time.monotonic() - started
    created = statuses.get("201", 0)
    stack.end_window(
        f"{args.scenario} end",
        lambda: counted(tenant, f"/segments/{segment}", "customer_count", created),
    )
    stack.record({
        "scenario": args.scenario, "kind": "create", "tenant": tenant.name,
        "customers": args.count, "writers": args.writers, "seconds": seconds,
        "statuses": statuses, "requests": requests,
    })


def stream(stack, args):
    """One stream batch of N customer records, evaluated by an enabled rule whose module
    the process has already loaded. The main local-stack is frozen (SIGSTOP) while the
    customers are created through the quiet instance (streams off), so their records
    wait in the stream; resumed, its poller hands them to the handler as one batch."""
    tenant = stack.tenant(args.scenario)
    segment = tenant.setup(CLUSTER_FIELDS + RULE_INPUTS)
    tenant.tiering_rule(args.wasm)
    tenant.expect(200, "PATCH", "/rules/tiering", {"enabled": True})
    job = f"/rules/tiering/backfill/{tenant.job()['id']}"
    wait_for(tenant, job, lambda answer: answer["state"] == "done")
    # One customer evaluated by this process: the module is compiled and cached.
    tenant.expect(201, "POST", "/customers", customer(99_999, fields=rule_inputs(1)))
    wait_for(tenant, "/customers/c99999", lambda c: "tier" in c["fields"])
    stack.log.wait_idle(stack.idle)

    quiet = stack.tenant(args.scenario, stack.quiet_url)
    bodies = [customer(i, segment, rule_inputs(i)) for i in range(args.count)]
    os.kill(args.pause, signal.SIGSTOP)
    try:
        statuses, _ = create_all(quiet, bodies, 16)
        seen = stack.log.read()
        stack.mark(f"{args.scenario} start")
    finally:
        os.kill(args.pause, signal.SIGCONT)
    records, ms = stack.log.wait_batch(seen, limit=120)
    stack.mark(f"{args.scenario} end")
    # The batch was the rule's: every customer (and the warm-up one) has a tier.
    wait_for(tenant, "/fields/tier", lambda field: field["member_count"] == args.count + 1)
    stack.record({
        "scenario": args.scenario, "kind": "stream", "tenant": tenant.name,
        "customers": records, "writers": 1, "seconds": ms / 1000,
        "statuses": {**statuses, "records in the batch": records},
    })


def backfill(stack, args):
    """A backfill of N customers: imported with the rule disabled, then the rule is
    enabled, which starts the job. Its time is the job's own (created_at to
    updated_at, the last step of any chain)."""
    tenant = stack.tenant(args.scenario)
    tenant.setup(CLUSTER_FIELDS + RULE_INPUTS)
    tenant.tiering_rule(args.wasm)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "seed.csv")
        header = ["id", "email", "annual_revenue", "customer_type"]
        rows = []
        for i in range(args.count):
            body, inputs = customer(i), rule_inputs(i)
            rows.append([body["id"], body["email"], *(inputs[name] for name in header[2:])])
        write_csv(path, header, rows)
        seeded, _ = import_csv(stack, tenant, path, 5_000, 4)
    if seeded["created"] != args.count:
        fail(f"seeding the backfill: {seeded}")
    stack.log.wait_idle(stack.idle)

    stack.mark(f"{args.scenario} start")
    tenant.expect(200, "PATCH", "/rules/tiering", {"enabled": True})
    stack.end_window(
        f"{args.scenario} end",
        lambda: tenant.job()["state"] == "done"
        and counted(tenant, "/fields/tier", "member_count", args.count),
    )
    job = tenant.job()
    # A job steps through the tenant's customers in chains that run side by side (one
    # per shard of the key layout), or in one chain of its own steps.
    chains = job.get("chains") or [job]
    stack.record({
        "scenario": args.scenario, "kind": "backfill", "tenant": tenant.name,
        "customers": args.count, "writers": len(chains),
        "seconds": seconds_between(job["created_at"], job["updated_at"]),
        "steps": max(chain["step"] for chain in chains),
        "statuses": {name: job[name] for name in ("state", "evaluated", "changed", "failed")},
    })


def import_rows(stack, args):
    """An import of N new customers into one segment and cluster value, with
    import-customers."""
    tenant = stack.tenant(args.scenario)
    segment = tenant.setup(CLUSTER_FIELDS)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "import.csv")
        header = ["id", "email", "first_name", "segment_id", "tier", "distributor"]
        rows = []
        for i in range(args.count):
            body = customer(i)
            rows.append([body["id"], body["email"], body["first_name"], segment, "AA", "true"])
        write_csv(path, header, rows)
        stack.log.wait_idle(stack.idle)
        stack.mark(f"{args.scenario} start")
        statuses, seconds = import_csv(
            stack, tenant, path, args.rows_per_request, args.concurrency
        )
    stack.end_window(
        f"{args.scenario} end",
        lambda: counted(tenant, f"/segments/{segment}", "customer_count", statuses["created"]),
    )
    # The server writes 16 rows of a request at a time.
    requests = min(args.concurrency, -(-args.count // args.rows_per_request))
    stack.record({
        "scenario": args.scenario, "kind": "import", "tenant": tenant.name,
        "customers": args.count, "writers": 16 * requests, "seconds": seconds,
        "statuses": statuses,
    })


def summary(result):
    rate = result["customers"] / result["seconds"] if result["seconds"] else 0
    answers = ", ".join(f"{name}: {value}" for name, value in result["statuses"].items())
    return f"{result['customers']} customers in {result['seconds']:.1f} s ({rate:.0f}/s); {answers}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the main local-stack (streams on)")
    parser.add_argument("--quiet-url", required=True, help="a local-stack with LOCAL_STREAMS=off")
    parser.add_argument("--moto", required=True, help="moto_server.py, tracing")
    parser.add_argument("--bin", required=True, help="where local-stack and import-customers are")
    parser.add_argument("--log", required=True, help="the main local-stack's log")
    parser.add_argument("--results", required=True, help="appends one JSON line per scenario")
    parser.add_argument("--run", required=True, help="prefix of the tenants' names")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds without a stream batch")
    scenarios = parser.add_subparsers(dest="command", required=True)

    command = scenarios.add_parser("creates", help=creates.__doc__)
    command.set_defaults(run_scenario=creates)
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--writers", type=int, required=True)

    command = scenarios.add_parser("stream", help=stream.__doc__)
    command.set_defaults(run_scenario=stream)
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--wasm", required=True, help="the tier-rust example module")
    command.add_argument("--pause", type=int, required=True, help="the main local-stack's pid")

    command = scenarios.add_parser("backfill", help=backfill.__doc__)
    command.set_defaults(run_scenario=backfill)
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--wasm", required=True, help="the tier-rust example module")

    command = scenarios.add_parser("import", help=import_rows.__doc__)
    command.set_defaults(run_scenario=import_rows)
    command.add_argument("--count", type=int, required=True)
    command.add_argument("--rows-per-request", type=int, default=1_000)
    command.add_argument("--concurrency", type=int, default=4)

    for command in scenarios.choices.values():
        command.add_argument("--scenario", required=True, help="its name in the report")
    args = parser.parse_args()
    args.run_scenario(Stack(args), args)


if __name__ == "__main__":
    main()
