"""Reads moto's call trace (`infra/moto_server.py --trace`) and the results of
`infra/scale_driver.py`, and prints per scenario what its DynamoDB calls show, then one
summary table. `infra/scale.sh` runs it; it can be run again on a kept trace:

    .venv/bin/python infra/scale_report.py .local/scale/trace.jsonl .local/scale/results.jsonl

A scenario's window holds the calls that started after its start mark and ended before
its end mark (the last mark of that label); only item operations count (GetItem ...
TransactWriteItems, not DescribeTable). Per window:

- calls by operation, and per customer (the scenario's customers);
- conflicts: TransactWriteItems cancelled with a `TransactionConflict` reason, and
  single writes refused with TransactionConflictException;
- shared items: a customer write is a write request that writes an item whose `kind`
  is `customer`, and belongs to that customer (its item's key); an item written by the
  write requests of two or more customers is shared (target: 0);
- sequential rounds: the longest chain of calls in which each starts after the previous
  one ended (activity selection, earliest end first); for a stream batch the target is
  at most 8;
- the partition keys written and read, and the model (`MODEL`).
"""

import argparse
import collections
import json
import math
import statistics

OPERATION_CLASS = {
    **dict.fromkeys(["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"], "read"),
    **dict.fromkeys(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"], "write"),
    "TransactWriteItems": "transact",
}
# DynamoDB's limits per partition key, per second.
PARTITION_WCU = 1_000
PARTITION_RCU = 3_000
# template.yaml: stream batches of one shard in flight at once, and how long Lambda
# gathers records before it invokes (what the lone record that starts a backfill step
# waits).
PARALLELIZATION_FACTOR = 4
BATCHING_WINDOW = 1.0
TARGET = 1_000_000

MODEL = f"""\
Model, per scenario, for {TARGET:,} customers:
  latency bound   = customers/s if DynamoDB's latency were the only wait:
    creates, import: writers / latency of one create's rounds (median over the requests
                     of the 1-writer run; an import row, whose reads are batched, counts
                     as one create);
    stream:          {PARALLELIZATION_FACTOR} batches in flight on a shard (ParallelizationFactor)
                     x customers per batch / latency of the batch's rounds;
    backfill:        customers / (latency of the window's rounds + {BATCHING_WINDOW:g} s
                     per step of the longest chain: a step starts from one stream
                     record, which Lambda holds for its batching window).
  partition bound = customers / the largest of (a key's WCU / {PARTITION_WCU:,},
                    a key's RCU / {PARTITION_RCU:,}),
    DynamoDB's limits per partition key and second. WCU: 1 per KB of an item written,
    2 per KB in TransactWriteItems (every action, ConditionCheck included); refused
    writes count; a Put's size is its JSON length, other actions 1 KB. RCU: 1 per 4 KB
    read, as strongly consistent, the answer's length as the size, at least 1 an item.
  throughput      = min(latency bound, partition bound); time = {TARGET:,} / throughput."""


def parse_latency(spec):
    """`read=4,write=6,transact=15` -> {"read": 0.004, ...} (seconds; left out: 0)."""
    latency = dict.fromkeys(("read", "write", "transact"), 0.0)
    for part in filter(None, spec.split(",")):
        name, _, ms = part.partition("=")
        latency[name.strip()] = float(ms) / 1000
    return latency


def load_trace(path):
    """(calls, marks): the traced item operations, and each mark's time by label."""
    calls, marks = [], {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            if not line.endswith("\n"):
                break  # being written: moto flushes whole lines only at marks
            record = json.loads(line)
            if "mark" in record:
                marks[record["mark"]] = record["t"]
            elif record.get("op") in OPERATION_CLASS:
                calls.append(record)
    return calls, marks


def within(calls, start, end):
    return [call for call in calls if call["t0"] >= start and call["t1"] <= end]


def chain(calls):
    """The longest chain of calls each starting after the previous one ended."""
    picked, free_at = [], -math.inf
    for call in sorted(calls, key=lambda c: c["t1"]):
        if call["t0"] >= free_at:
            picked.append(call)
            free_at = call["t1"]
    return picked


def item(write):
    return write["table"], write.get("pk"), write.get("sk")


def is_customer_write(call):
    return any(write.get("kind") == "customer" for write in call.get("writes", []))


def shared_items(calls):
    """{item: customers} of the items that write requests of 2+ customers wrote."""
    owners = collections.defaultdict(set)
    for call in filter(is_customer_write, calls):
        customers = {item(w) for w in call["writes"] if w.get("kind") == "customer"}
        for write in call["writes"]:
            owners[item(write)] |= customers
    return {key: who for key, who in owners.items() if len(who) > 1}


def is_conflict(call):
    reasons = call.get("reasons") or []
    return "TransactionConflict" in reasons or call.get("error") == "TransactionConflictException"


def capacity(calls):
    """(WCU by partition key, RCU by partition key), as the model counts them."""
    wcu, rcu = collections.Counter(), collections.Counter()
    for call in calls:
        factor = 2 if call["op"] == "TransactWriteItems" else 1
        for write in call.get("writes", []):
            wcu[write.get("pk")] += factor * max(1, math.ceil(write.get("bytes", 1024) / 1024))
        reads = call.get("reads", [])
        if reads:
            factor = 2 if call["op"] == "TransactGetItems" else 1
            units = factor * max(len(reads), math.ceil(call["bytes"] / 4096))
            for read in reads:
                rcu[read.get("pk")] += units / len(reads)
    return wcu, rcu


class Scenario:
    """One scenario's result and what the calls of its window show."""

    def __init__(self, result, calls, marks, latency):
        self.result = result
        self.name = result["scenario"]
        self.kind = result["kind"]
        self.customers = result["customers"]
        start, end = marks[f"{self.name} start"], marks[f"{self.name} end"]
        self.window = end - start
        self.calls = within(calls, start, end)
        self.latency = latency
        self.rounds = chain(self.calls)
        self.conflicts = sum(map(is_conflict, self.calls))
        self.shared = shared_items(self.calls)
        self.wcu, self.rcu = capacity(self.calls)
        customer_writes = list(filter(is_customer_write, self.calls))
        self.customer_keys = {w.get("pk") for call in customer_writes for w in call["writes"]}
        self.other_kinds = collections.Counter(
            str(w.get("kind"))
            for call in self.calls
            if not is_customer_write(call)
            for w in call.get("writes", [])
        )
        # One create alone: its rounds and their latency, median over the requests.
        self.per_create = None
        if self.kind == "create" and result["writers"] == 1:
            chains = [chain(within(self.calls, *r)) for r in result["requests"]]
            self.per_create = (
                statistics.median(map(len, chains)),
                statistics.median(map(self.chain_seconds, chains)),
            )

    def chain_seconds(self, calls):
        """The sum of the injected latencies of these calls."""
        return sum(self.latency[OPERATION_CLASS[call["op"]]] for call in calls)

    def latency_bound(self, create_seconds):
        """Customers/s with DynamoDB's latency the only wait (None without the 1-writer
        create run that creates and imports need)."""
        if self.kind in ("create", "import"):
            return self.result["writers"] / create_seconds if create_seconds else None
        seconds = self.chain_seconds(self.rounds)
        if self.kind == "stream":
            return PARALLELIZATION_FACTOR * self.customers / seconds
        return self.customers / (seconds + self.result["steps"] * BATCHING_WINDOW)

    def partition_bound(self):
        worst = max(
            max(self.wcu.values(), default=0) / PARTITION_WCU,
            max(self.rcu.values(), default=0) / PARTITION_RCU,
        )
        return self.customers / worst if worst else math.inf

    def rounds_text(self):
        """The rounds of the scenario's unit; a chain across concurrent writers tells
        nothing about one of them."""
        if self.per_create:
            return f"{self.per_create[0]:g} per create"
        if self.kind == "stream":
            return f"{len(self.rounds)} per batch"
        if self.kind == "backfill":
            steps = self.result["steps"]
            return f"{len(self.rounds)} in the job ({steps} step{'s' * (steps != 1)} per chain)"
        return "-"


def per_customer(count, customers):
    return f"{count / customers:.2f}" if customers else "-"


def duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def listing(counts):
    """`name: value, ...` of a dict."""
    return ", ".join(f"{name}: {value}" for name, value in counts.items())


def shares(units, tenant, top=3):
    """The `top` partition keys by units, with their share: `<t>#X 40.0%, ...`."""
    total = sum(units.values())
    best = units.most_common(top)
    return ", ".join(f"{str(pk).replace(tenant, '<t>')} {100 * n / total:.1f}%" for pk, n in best)


def report(scenario, create_seconds):
    """Prints one scenario; returns its row of the summary table."""
    result, customers, tenant = scenario.result, scenario.customers, scenario.result["tenant"]
    seconds = result["seconds"]
    rate = customers / seconds if seconds else 0
    by_op = collections.Counter(call["op"] for call in scenario.calls)
    outcomes = collections.Counter(c.get("error") or str(c["status"]) for c in scenario.calls)
    latency = scenario.latency_bound(create_seconds)
    partition = scenario.partition_bound()
    throughput = min(latency or math.inf, partition)

    print(f"\n== {scenario.name}: customers {customers:,}, writers {result['writers']}, "
          f"tenant {tenant} (<t> below)")
    print(f"  measured: {seconds:.1f} s ({rate:,.0f} customers/s); {listing(result['statuses'])}")
    print(f"  window: {scenario.window:.1f} s, {len(scenario.calls):,} DynamoDB calls, "
          f"{per_customer(len(scenario.calls), customers)} per customer")
    for op, count in by_op.most_common():
        print(f"    {op:<20} {count:>8,}  {per_customer(count, customers)} per customer")
    print(f"  DynamoDB answers: {listing(dict(outcomes.most_common()))}")
    print(f"  conflicts: {scenario.conflicts}")
    print(f"  shared items (written by 2+ customers' writes; target 0): {len(scenario.shared)}")
    for (_, pk, sk), who in sorted(scenario.shared.items(), key=lambda kv: -len(kv[1]))[:3]:
        print(f"    {pk.replace(tenant, '<t>')} / {sk}: {len(who)} customers")
    print("  items of the other writes (no customer item in them), by kind: "
          f"{listing(dict(scenario.other_kinds.most_common()))}")
    print(f"  sequential rounds in the window: {len(scenario.rounds)}, "
          f"{scenario.chain_seconds(scenario.rounds) * 1000:.0f} ms of DynamoDB latency")
    if scenario.per_create:
        rounds, one = scenario.per_create
        print(f"    one create: {rounds:g} rounds, {one * 1000:.0f} ms (median over the requests)")
    print(f"  partition keys: {len(scenario.wcu)} written, "
          f"{len(scenario.customer_keys)} by customer writes")
    for name, units in (("WCU", scenario.wcu), ("RCU", scenario.rcu)):
        print(f"    {name} {sum(units.values()) / customers:.1f} per customer; "
              f"largest shares: {shares(units, tenant)}")
    latency_text = f"{latency:,.0f}/s" if latency else "n/a (no 1-writer create run)"
    print(f"  model: latency bound {latency_text}, partition bound {partition:,.0f}/s: "
          f"{throughput:,.0f} customers/s, {TARGET:,} in {duration(TARGET / throughput)}")
    return [
        scenario.name, f"{customers:,}", str(result["writers"]), f"{seconds:.1f}",
        listing(result["statuses"]), per_customer(len(scenario.calls), customers),
        str(scenario.conflicts), str(len(scenario.shared)), scenario.rounds_text(),
        f"{throughput:,.0f}", duration(TARGET / throughput),
    ]


def table(rows):
    header = ["scenario", "customers", "writers", "seconds", "answers", "calls/customer",
              "conflicts", "shared items", "rounds", "modelled /s", f"{TARGET:,} in"]
    print("\n| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", help="moto_server.py's trace file")
    parser.add_argument("results", help="scale_driver.py's results file")
    parser.add_argument("--latency", default="read=4,write=6,transact=15",
                        help="the latencies moto injected (its --latency)")
    args = parser.parse_args()
    calls, marks = load_trace(args.trace)
    with open(args.results, encoding="utf-8") as file:
        results = [json.loads(line) for line in file]
    scenarios = [Scenario(r, calls, marks, parse_latency(args.latency)) for r in results]
    create_seconds = next((s.per_create[1] for s in scenarios if s.per_create), None)
    print(f"DynamoDB latency injected: {args.latency}\n{MODEL}")
    table([report(scenario, create_seconds) for scenario in scenarios])


if __name__ == "__main__":
    main()
