"""moto's server, applying one request at a time, with DynamoDB's transaction conflicts and latency.

Serialized. `moto_server` handles requests on concurrent threads, but moto's DynamoDB
backend is not safe under concurrency: TransactWriteItems snapshots every table it
touches and, when a condition fails, restores the snapshot, undoing writes that other
requests made in the meantime; and condition checks can interleave with other writes.
Real DynamoDB applies each request atomically. Applying requests one at a time under
one lock restores that, so tests may run in parallel against one moto.

All-or-nothing transactions. This also replaces moto's TransactWriteItems. moto
deep-copies every table a transaction touches (once per item) so that it can roll back,
which makes each transaction cost O(table size, stream history included) and strands
stream iterators on the discarded copy. DynamoDB checks every condition against the
state before the transaction and then applies all writes or none; this does the same:
all conditions first, then the writes, so there is nothing to roll back.

Latency (default: none). DynamoDB answers in milliseconds, not microseconds, and
requests in flight wait at the same time, not one after the other. A request sleeps its
latency before it takes the lock, so concurrent requests wait concurrently:

    --latency read=4,write=6,transact=15      (or MOTO_LATENCY_MS=read=4,...; the flag wins)

in milliseconds, by operation (from the `X-Amz-Target` header): `read` GetItem, Query,
Scan, BatchGetItem, TransactGetItems; `write` PutItem, UpdateItem, DeleteItem,
BatchWriteItem; `transact` TransactWriteItems. Other operations never wait. A class left
out is 0. At run time, without a restart:

    POST   /_emulation/latency  {"table": "t", "read": 4, "write": 6, "transact": 15}
    DELETE /_emulation/latency?table=t
    GET    /_emulation/latency

POST with `"table": null` (or no `table`) replaces the global setting; with a table
name it sets that table's own setting, which overrides the global one for every class
(classes left out are 0). DELETE drops a table's own setting (the table goes back to
the global one). Each answers the whole configuration as JSON. The table of a request
is its `TableName`; for Transact* and Batch* requests the first table named in it.

Transaction conflicts (default: on; `--no-conflicts` turns them off). While a
TransactWriteItems is in flight - from when it is received until its latency has passed;
the wait for the global lock is not included, since DynamoDB has no such queue - its
items (table and key, every action's, ConditionCheck included) are claimed, and as on
DynamoDB:

- another TransactWriteItems touching a claimed item is cancelled:
  TransactionCanceledException, with `TransactionConflict` for each conflicting action
  and `None` for the others;
- a PutItem, UpdateItem or DeleteItem on a claimed item fails with
  TransactionConflictException;
- the transaction holding the claim goes on unaffected.

BatchWriteItem and TransactGetItems are not checked against claims. With no latency
configured the window is a few microseconds, so conflicts need latency to show.

Call trace (default: off; `--trace FILE` or MOTO_TRACE=FILE, the flag wins): one JSON
line per DynamoDB request (not DynamoDB Streams, not these control paths), appended to
FILE, for `infra/scale_report.py`:

    {"t0": 81.20, "t1": 81.24, "op": "TransactWriteItems", "table": "t",
     "writes": [{"table": "t", "pk": "T#a", "sk": "CUSTOMER#1", "action": "Put",
                 "kind": "customer", "bytes": 412}, ...],
     "status": 400, "bytes": 310, "error": "TransactionCanceledException",
     "reasons": ["None", "TransactionConflict"]}

`t0`/`t1`: `time.monotonic()` when the request arrived and when its answer was ready
(latency and the wait for the lock included). `writes`: every item written, with the
action (Put, Update, Delete, ConditionCheck), `pk`/`sk` (the values of the table's hash
and range key) and `kind` (the Put item's attribute, else the stored item's); `bytes` of
a Put is its item's JSON length. `reads`: the items read (GetItem, BatchGetItem,
TransactGetItems) or the partition (`pk` of a Query). `bytes`: the answer's length;
`error` and `reasons` only on refused requests. At run time:

    POST   /_emulation/trace       {"file": "/tmp/trace.jsonl"}   (start, or switch files)
    DELETE /_emulation/trace                                      (stop)
    GET    /_emulation/trace
    POST   /_emulation/trace/mark  {"label": "import start"}      -> {"t": ..., "mark": ...}

The others answer {"file": <path or null>}; a mark needs a running trace. The file is
flushed at every mark, so a reader that has just set one sees every call before it.

Starting it. Everything that runs moto - `./infra/moto.sh start` and `./infra/dev.sh`,
the private stacks of `infra/lib.sh` (fuzzing, load, scale), the integration tests'
harness `tests/lib.rs` and `infra/coldstart.py` - starts it one way, in the foreground:

    infra/moto.sh run [-H HOST] [-p PORT] [--port-file FILE] [--latency SPEC]
                      [--no-conflicts] [--trace FILE]

which runs this file on the `.venv` Python (or says to run `./infra/setup.sh`). `-p 0`
takes any free port, chosen when the socket is bound, so two starters never race for
one. With `--port-file FILE` the server writes its port to FILE (atomically) once it
listens and removes it when it stops: its starter waits for that file - ready, and on
which port - or for the process to exit (the log says why).
"""

import argparse
import base64
import binascii
import datetime
import functools
import gc
import io
import json
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

from werkzeug.serving import make_server
from werkzeug.wsgi import get_input_stream

from moto.core.serialize import TimestampSerializer
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def transact_write_items(self, transact_items):
    """All-or-nothing like DynamoDB: every condition is checked before any write."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    targets = set()
    checked = []
    errors = []
    for entry in transact_items:
        if len(entry) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(entry.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise MockValidationException("Unsupported transaction operation")
        table_name = op["TableName"]
        table = self.get_table(table_name)
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        target = (str(table_name), str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        current = self.get_item(table_name, key)
        error = (None, None, None)
        expression = op.get("ConditionExpression")
        if expression is not None:
            condition = get_filter_expression(
                expression,
                op.get("ExpressionAttributeNames"),
                op.get("ExpressionAttributeValues"),
            )
            if not condition.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                error = ("ConditionalCheckFailed", "The conditional request failed", old)
        errors.append(error)
        checked.append((op_type, op, table_name, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    for op_type, op, table_name, key in checked:
        names = op.get("ExpressionAttributeNames")
        values = op.get("ExpressionAttributeValues")
        if op_type == "Put":
            self.put_item(table_name, op["Item"])
        elif op_type == "Delete":
            self.delete_item(table_name, key)
        elif op_type == "Update":
            self.update_item(
                table_name,
                key,
                update_expression=op["UpdateExpression"],
                expression_attribute_names=names,
                expression_attribute_values=values,
            )


DynamoDBBackend.transact_write_items = transact_write_items


# ---------------------------------------------------------------------------------
# Operations

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

LATENCY_CLASSES = ("read", "write", "transact")
OPERATION_CLASS = {
    **dict.fromkeys(
        ["GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"], "read"
    ),
    **dict.fromkeys(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"], "write"),
    "TransactWriteItems": "transact",
}
SINGLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}

CONFLICT_MESSAGE = "Transaction is ongoing for the item"
CANCELLED_MESSAGE = (
    "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]"
)


def dynamodb_operation(environ):
    """The DynamoDB operation of a request (`X-Amz-Target: DynamoDB_20120810.PutItem` ->
    `PutItem`), or None for anything else (DynamoDB Streams, moto's own API, ...)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if environ.get("REQUEST_METHOD") != "POST" or not target.startswith(TARGET_PREFIX):
        return None
    return target[len(TARGET_PREFIX) :]


def read_json_body(environ):
    """The request's JSON body, or None when it is not a JSON object. The body is put
    back into `environ`, so moto reads the same bytes afterwards."""
    body = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    # A chunked body is now a plain one of known length.
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def request_region(environ):
    """The region of a request, from its SigV4 credential scope, as moto reads it."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/,]+/[^/,]+/([^/,]+)/", authorization)
    return match.group(1) if match else "us-east-1"


def request_table(operation, request):
    """The table a request is about, for per-table latency: `TableName`, or for
    Transact*/Batch* requests the first table named."""
    if isinstance(request.get("TableName"), str):
        return request["TableName"]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        for action in request.get("TransactItems") or []:
            if isinstance(action, dict):
                for op in action.values():
                    if isinstance(op, dict) and isinstance(op.get("TableName"), str):
                        return op["TableName"]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        items = request.get("RequestItems")
        if isinstance(items, dict):
            return next(iter(items), None)
    return None


# ---------------------------------------------------------------------------------
# Latency


def parse_latency(spec):
    """`read=4,write=6,transact=15` -> {"read": 4.0, ...} (ms; classes left out are 0).
    Raises ValueError on anything else, so a typo fails at start-up."""
    setting = dict.fromkeys(LATENCY_CLASSES, 0.0)
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in LATENCY_CLASSES:
            raise ValueError(f"{part!r}: expected CLASS=MS with CLASS one of {LATENCY_CLASSES}")
        ms = float(value)
        if not (math.isfinite(ms) and ms >= 0):
            raise ValueError(f"{part!r}: latency must be a non-negative number of ms")
        setting[name] = ms
    return setting


def latency_from_json(body):
    """A control request's setting: {"read": 4, ...} -> {"read": 4.0, ...}, classes left
    out 0. Raises ValueError on unknown keys or values that are not ms."""
    unknown = set(body) - set(LATENCY_CLASSES) - {"table"}
    if unknown:
        expected = ", ".join(("table",) + LATENCY_CLASSES)
        raise ValueError(f"unknown keys {sorted(unknown)}; expected {expected}")
    setting = dict.fromkeys(LATENCY_CLASSES, 0.0)
    for name in LATENCY_CLASSES:
        value = body.get(name, 0)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: expected a non-negative number of ms, got {value!r}")
        setting[name] = float(value)
    return setting


class Latency:
    """How long each class of operation waits: one global setting and per-table
    settings that override it, changed at run time by the control endpoint."""

    def __init__(self, default):
        self._lock = threading.Lock()
        self._global = default
        self._tables = {}

    def seconds(self, operation, table):
        """The wait of `operation` on `table`, in seconds (0 for unclassified ones)."""
        kind = OPERATION_CLASS.get(operation)
        if kind is None:
            return 0.0
        with self._lock:
            setting = self._tables.get(table, self._global)
            return setting[kind] / 1000.0

    def set(self, table, setting):
        """Replaces the global setting (table None) or a table's own."""
        with self._lock:
            if table is None:
                self._global = setting
            else:
                self._tables[table] = setting

    def clear(self, table):
        """Drops a table's own setting: it waits as the global setting says again."""
        with self._lock:
            self._tables.pop(table, None)

    def state(self):
        with self._lock:
            tables = {table: dict(setting) for table, setting in self._tables.items()}
            return {"global": dict(self._global), "tables": tables}


# ---------------------------------------------------------------------------------
# Transaction conflicts


class Claims:
    """The items of the TransactWriteItems in flight. Its own small lock makes a claim
    atomic (check every item, then take them all) without the lock that applies
    requests, which must not be held while requests sleep their latency."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held = set()

    def claim(self, items):
        """Claims every item (None entries are skipped) unless one is already claimed.
        Returns, per item in order, whether it conflicts; nothing is claimed if any does."""
        with self._lock:
            conflicts = [item is not None and item in self._held for item in items]
            if not any(conflicts):
                self._held.update(item for item in items if item is not None)
            return conflicts

    def release(self, items):
        """Releases what `claim` took: claims are exclusive, so no one else holds them."""
        with self._lock:
            self._held.difference_update(item for item in items if item is not None)

    def held(self, item):
        with self._lock:
            return item is not None and item in self._held


def stored_table(table_name, region):
    """moto's table named `table_name`, or None if there is no such table (moto then
    answers the request's error itself). Looked up across moto's accounts, the request's
    region first; `list()` copies each dict in one step, so tables created meanwhile by
    other threads cannot break the iteration."""
    found = None
    for account in list(dynamodb_backends.values()):
        for backend_region, backend in list(account.items()):
            table = backend.tables.get(table_name)
            if table is None:
                continue
            if backend_region == region:
                return table
            found = found or table
    return found


def key_attributes(table_name, region):
    """The (hash, range) key attribute names of a table, or None if there is none."""
    table = stored_table(table_name, region)
    return None if table is None else (table.hash_key_attr, table.range_key_attr)


def canonical(value):
    """An attribute value as a comparable string: numbers by value (`1.0` is `1`)."""
    if isinstance(value, dict) and isinstance(value.get("N"), str):
        try:
            return json.dumps({"N": str(Decimal(value["N"]).normalize())})
        except InvalidOperation:
            pass
    return json.dumps(value, sort_keys=True)


def item_id(table_name, attributes, region):
    """The identity of an item, (table, key values), from its key or whole item; None
    when it cannot be told (no such table, key attributes missing: moto will refuse)."""
    if not isinstance(table_name, str) or not isinstance(attributes, dict):
        return None
    names = key_attributes(table_name, region)
    if names is None:
        return None
    key = []
    for name in names:
        if name is None:
            continue
        if name not in attributes:
            return None
        key.append((name, canonical(attributes[name])))
    return table_name, tuple(key)


def transaction_items(request, region):
    """The item of every action of a TransactWriteItems, in order (None where unknown)."""
    items = []
    actions = request.get("TransactItems")
    for action in actions if isinstance(actions, list) else []:
        if not isinstance(action, dict) or len(action) != 1:
            items.append(None)  # moto refuses it
            continue
        op_type, op = next(iter(action.items()))
        if not isinstance(op, dict):
            items.append(None)
            continue
        attributes = op.get("Item") if op_type == "Put" else op.get("Key")
        items.append(item_id(op.get("TableName"), attributes, region))
    return items


def single_write_item(operation, request, region):
    """The item a PutItem (its Item), UpdateItem or DeleteItem (its Key) writes."""
    attributes = request.get("Item") if operation == "PutItem" else request.get("Key")
    return item_id(request.get("TableName"), attributes, region)


# ---------------------------------------------------------------------------------
# Call trace


def scalar(value):
    """A key or `kind` attribute as a plain value: {"S": "x"} -> "x" (None if absent)."""
    if isinstance(value, dict) and len(value) == 1:
        return next(iter(value.values()))
    return None if value is None else json.dumps(value, sort_keys=True)


def traced_key(table_name, attributes, region):
    """{"table", "pk", "sk"} of the item with these attributes (its key or whole item):
    pk and sk are the values of the table's hash and range key, whatever their names."""
    key = {"table": table_name}
    names = key_attributes(table_name, region) if isinstance(table_name, str) else None
    for label, name in zip(("pk", "sk"), names or ()):
        if name is not None:
            key[label] = scalar(attributes.get(name))
    return key


def stored_kind(table_name, attributes, region):
    """The `kind` of the item with this key as moto holds it now, or None. Read without
    the lock that applies requests, like `stored_table`: an item's kind never changes,
    and `get` (unlike moto's `get_item`) adds nothing to moto's defaultdicts."""
    table = stored_table(table_name, region) if isinstance(table_name, str) else None
    if table is None:
        return None
    partition = table.items.get(DynamoType(attributes[table.hash_key_attr]))
    if partition is not None and table.range_key_attr is not None:
        partition = partition.get(DynamoType(attributes[table.range_key_attr]))
    kind = partition.attrs.get("kind") if partition is not None else None
    return kind.value if kind is not None else None


def traced_write(table_name, action, op, region):
    """A written item: its key, the action (`Put`, `Update`, `Delete`, `ConditionCheck`)
    and its `kind` (a Put's item's, else the stored item's); for a Put also `bytes`, the
    item's JSON length, an upper bound of DynamoDB's item size."""
    if action == "Put":
        item = op["Item"]
        key = traced_key(table_name, item, region)
        kind, size = scalar(item.get("kind")), len(json.dumps(item))
        return {**key, "action": action, "kind": kind, "bytes": size}
    key = traced_key(table_name, op["Key"], region)
    return {**key, "action": action, "kind": stored_kind(table_name, op["Key"], region)}


def query_partition(request, region):
    """{"table", "pk"} of a Query: the hash key's value from `KeyConditionExpression`
    (`pk = :value`, the name possibly through `ExpressionAttributeNames`)."""
    table_name = request.get("TableName")
    names = key_attributes(table_name, region) or (None,)
    aliases = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    condition = request.get("KeyConditionExpression") or ""
    for name, placeholder in re.findall(r"([#\w.]+)\s*=\s*(:\w+)", condition):
        if aliases.get(name, name) == names[0]:
            return {"table": table_name, "pk": scalar(values.get(placeholder))}
    return {"table": table_name, "pk": None}


def traced_request(operation, request, region):
    """What the trace records of a request before it runs: operation, table, the items
    it writes (`writes`) and the items or partitions it reads (`reads`). Raises
    AttributeError, KeyError or TypeError on a request moto will refuse."""
    writes, reads = [], []
    if operation == "TransactWriteItems":
        for action in request["TransactItems"]:
            (name, op), = action.items()
            writes.append(traced_write(op["TableName"], name, op, region))
    elif operation in SINGLE_WRITES:
        name = operation.removesuffix("Item")
        writes.append(traced_write(request["TableName"], name, request, region))
    elif operation == "BatchWriteItem":
        for table_name, entries in request["RequestItems"].items():
            for entry in entries:
                (name, op), = entry.items()  # PutRequest or DeleteRequest
                writes.append(traced_write(table_name, name.removesuffix("Request"), op, region))
    elif operation == "GetItem":
        reads.append(traced_key(request["TableName"], request["Key"], region))
    elif operation == "BatchGetItem":
        for table_name, spec in request["RequestItems"].items():
            reads.extend(traced_key(table_name, key, region) for key in spec["Keys"])
    elif operation == "TransactGetItems":
        for action in request["TransactItems"]:
            get = action["Get"]
            reads.append(traced_key(get["TableName"], get["Key"], region))
    elif operation == "Query":
        reads.append(query_partition(request, region))
    call = {"op": operation, "table": request_table(operation, request)}
    if writes:
        call["writes"] = writes
    if reads:
        call["reads"] = reads
    return call


def traced_outcome(body):
    """The error of a refused request: `error` (its `__type` without the namespace) and,
    for a cancelled transaction, `reasons` (each action's cancellation code)."""
    try:
        answer = json.loads(b"".join(body))
    except ValueError:
        return {}
    if not isinstance(answer, dict):
        return {}
    outcome = {"error": str(answer.get("__type", "")).rpartition("#")[2]}
    reasons = answer.get("CancellationReasons")
    if isinstance(reasons, list):
        outcome["reasons"] = [reason.get("Code") for reason in reasons]
    return outcome


class Trace:
    """The call trace (default: off): one JSON line per DynamoDB request, appended to a
    file, and marker lines. A line is built outside the lock and written under it, so
    lines never interleave; the file is flushed at every mark and when the trace stops,
    so a reader that has just set a mark sees every line before it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._file = None
        self._path = None

    @property
    def on(self):
        return self._file is not None

    def start(self, path):
        """Appends to `path` from now on (instead of the file written so far, if any)."""
        file = open(path, "a", encoding="utf-8")
        with self._lock:
            previous, self._file, self._path = self._file, file, path
        if previous is not None:
            previous.close()

    def stop(self):
        with self._lock:
            previous, self._file, self._path = self._file, None, None
        if previous is not None:
            previous.close()

    def write(self, record):
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)

    def mark(self, label):
        """Writes and returns a marker line `{"t": <monotonic time>, "mark": label}`.
        Raises ValueError when no trace is being written."""
        marker = {"t": round(time.monotonic(), 6), "mark": label}
        line = json.dumps(marker, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                raise ValueError("no trace is being written; POST /_emulation/trace first")
            self._file.write(line)
            self._file.flush()
        return marker

    def state(self):
        with self._lock:
            return {"file": self._path}


# ---------------------------------------------------------------------------------
# DynamoDB's errors


def dynamodb_error(start_response, name, body):
    """An HTTP 400 JSON 1.0 error as DynamoDB sends it: the shape id in `__type` and in
    `x-amzn-ErrorType` (SDKs read either, stripping the namespace), a request id, and the
    CRC32 of the body that botocore checks."""
    body = {"__type": ERROR_PREFIX + name, **body}
    payload = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-ErrorType", ERROR_PREFIX + name),
            ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
            ("x-amz-crc32", str(binascii.crc32(payload))),
            ("Content-Length", str(len(payload))),
        ],
    )
    return [payload]


def transaction_cancelled(start_response, conflicts):
    """TransactionCanceledException: one reason per action, in order."""
    conflict = {"Code": "TransactionConflict", "Message": CONFLICT_MESSAGE}
    reasons = [conflict if conflicting else {"Code": "None"} for conflicting in conflicts]
    message = CANCELLED_MESSAGE.format(", ".join(r["Code"] for r in reasons))
    return dynamodb_error(
        start_response,
        "TransactionCanceledException",
        {"Message": message, "CancellationReasons": reasons},
    )


def transaction_conflict(start_response):
    """TransactionConflictException, the answer to a single write on a claimed item."""
    # This shape's member is `message`, TransactionCanceledException's `Message`.
    return dynamodb_error(
        start_response, "TransactionConflictException", {"message": CONFLICT_MESSAGE}
    )


def control_body(environ):
    """A control request's JSON object body (`{}` when empty); ValueError otherwise."""
    body = json.loads(get_input_stream(environ).read() or b"{}")
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


# ---------------------------------------------------------------------------------
# The application

CONTROL_PATH = "/_emulation/latency"
TRACE_PATH = "/_emulation/trace"
MARK_PATH = "/_emulation/trace/mark"


class Emulation:
    """The WSGI application: moto behind one lock, with latency slept outside it,
    transaction conflicts decided before it, and every request traced when asked."""

    def __init__(self, moto_app, latency, conflicts, trace):
        self.moto_app = moto_app
        self.latency = latency
        self.claims = Claims() if conflicts else None
        self.trace = trace
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        if path == CONTROL_PATH:
            return self.control(environ, start_response)
        if path in (TRACE_PATH, MARK_PATH):
            return self.trace_control(environ, start_response)
        operation = dynamodb_operation(environ)
        if operation is None:
            return self.apply(environ, start_response)
        started = time.monotonic()
        request = read_json_body(environ)
        if request is None:
            # Malformed: moto answers the error DynamoDB would.
            return self.apply(environ, start_response)
        region = request_region(environ)
        if self.trace.on:
            return self.traced(environ, start_response, operation, request, region, started)
        return self.dynamodb(environ, start_response, operation, request, region)

    def traced(self, environ, start_response, operation, request, region, started):
        """`dynamodb`, and one trace line: the call (read before it runs: a Delete takes
        its item's kind with it), when it started and ended, its status and outcome."""
        try:
            call = traced_request(operation, request, region)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            call = {"op": operation}  # moto refuses it
        statuses = []

        def keep_status(status, headers, exc_info=None):
            statuses.append(status)
            return start_response(status, headers, exc_info)

        body = self.dynamodb(environ, keep_status, operation, request, region)
        status = int(statuses[-1].split()[0])
        record = {"t0": round(started, 6), "t1": round(time.monotonic(), 6), **call}
        record.update(status=status, bytes=sum(map(len, body)))
        if status != 200:
            record.update(traced_outcome(body))
        self.trace.write(record)
        return body

    def dynamodb(self, environ, start_response, operation, request, region):
        """A DynamoDB request: its latency, its conflicts, then moto."""
        delay = self.latency.seconds(operation, request_table(operation, request))
        if self.claims is not None and operation == "TransactWriteItems":
            return self.transact(environ, start_response, transaction_items(request, region), delay)
        if self.claims is not None and operation in SINGLE_WRITES:
            item = single_write_item(operation, request, region)
            return self.single_write(environ, start_response, item, delay)
        time.sleep(delay)
        return self.apply(environ, start_response)

    def apply(self, environ, start_response):
        """Runs the request in moto; the whole response is produced under the lock."""
        with self.lock:
            return list(self.moto_app(environ, start_response))

    def transact(self, environ, start_response, items, delay):
        """Claim (or be cancelled by a conflict), sleep, release, apply: the claim covers
        the transaction's latency window, as on DynamoDB. The wait for the global lock
        is left out: it is this emulator's queue, which DynamoDB does not have."""
        conflicts = self.claims.claim(items)
        if any(conflicts):
            time.sleep(delay)
            return transaction_cancelled(start_response, conflicts)
        try:
            time.sleep(delay)
        finally:
            self.claims.release(items)
        return self.apply(environ, start_response)

    def single_write(self, environ, start_response, item, delay):
        """Refused while a transaction holds the item; otherwise sleep, then apply."""
        conflict = self.claims.held(item)
        time.sleep(delay)
        if conflict:
            return transaction_conflict(start_response)
        return self.apply(environ, start_response)

    def control(self, environ, start_response):
        """GET, POST and DELETE /_emulation/latency (see the module's docstring)."""
        method = environ.get("REQUEST_METHOD")
        try:
            if method == "POST":
                body = control_body(environ)
                table = body.get("table")
                if table is not None and not isinstance(table, str):
                    raise ValueError("table: expected a table name or null")
                self.latency.set(table, latency_from_json(body))
            elif method == "DELETE":
                tables = parse_qs(environ.get("QUERY_STRING", "")).get("table")
                if not tables:
                    raise ValueError("expected ?table=NAME")
                for table in tables:
                    self.latency.clear(table)
            elif method != "GET":
                error = {"error": f"{method} not allowed"}
                return self.reply(start_response, "405 Method Not Allowed", error)
        except (ValueError, OverflowError) as e:
            return self.reply(start_response, "400 Bad Request", {"error": str(e)})
        state = {**self.latency.state(), "conflicts": self.claims is not None}
        return self.reply(start_response, "200 OK", state)

    def trace_control(self, environ, start_response):
        """GET, POST and DELETE /_emulation/trace, POST /_emulation/trace/mark (see the
        module's docstring)."""
        method = environ.get("REQUEST_METHOD")
        mark = environ.get("PATH_INFO") == MARK_PATH
        try:
            if method == "POST" and mark:
                label = control_body(environ).get("label")
                if not isinstance(label, str):
                    raise ValueError("label: expected a string")
                return self.reply(start_response, "200 OK", self.trace.mark(label))
            if method == "POST":
                file = control_body(environ).get("file")
                if not isinstance(file, str) or not file:
                    raise ValueError("file: expected a path")
                self.trace.start(file)
            elif method == "DELETE" and not mark:
                self.trace.stop()
            elif method != "GET" or mark:
                error = {"error": f"{method} not allowed"}
                return self.reply(start_response, "405 Method Not Allowed", error)
        except (ValueError, OSError) as e:
            return self.reply(start_response, "400 Bad Request", {"error": str(e)})
        return self.reply(start_response, "200 OK", self.trace.state())

    @staticmethod
    def reply(start_response, status, body):
        payload = json.dumps(body).encode()
        start_response(
            status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


def query_one_partition() -> None:
    """Makes moto's Query read only the queried partition. moto answers a Query on the
    table by sorting every item of the table and filtering them by partition key, so a
    Query costs the whole table (a 100,000-customer table makes each one take seconds),
    where DynamoDB reads only the partition. moto keeps items by partition key already:
    hand its query that partition's items. Index queries are left as they are."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self, hash_key, *args, **kwargs):
        # Called as query(hash_key, range_comparison, range_objs, limit,
        # exclusive_start_key, scan_index_forward, projection_expressions, index_name, ...).
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return original(self, hash_key, *args, **kwargs)
        partition = self.items.get(hash_key, {})
        items = list(partition.values()) if self.range_key_attr else [partition]
        # Requests are applied one at a time (see Emulation), so shadowing the method on
        # the instance for this call cannot leak into another request.
        self.all_items = lambda: [i for i in items if i]
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query


def write_port_file(path, port):
    """Writes `port` and a newline to `path` at once: a reader sees all of it or no file."""
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as file:
        file.write(f"{port}\n")
    os.replace(temp, path)


def remove_port_file(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


# The operations answered with `json.dumps` (`answer_directly`), by moto service: item
# operations, and the stream's records.
DIRECT_ANSWERS = {
    "dynamodb": frozenset(
        {
            "GetItem",
            "BatchGetItem",
            "Query",
            "Scan",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactGetItems",
            "TransactWriteItems",
        }
    ),
    "dynamodbstreams": frozenset({"GetRecords"}),
}


def without_none(value):
    """`value` with every `None` member of its objects left out, as moto's serializer does."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def json_extra(value):
    """JSON for what `json` cannot write, as moto's JSON serializer writes it: binary
    attribute values base64, timestamps in epoch seconds (to the millisecond)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime):
        return TimestampSerializer._timestamp_unixtimestamp(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def answer_directly() -> None:
    """Writes the answers of item operations and of the stream's `GetRecords` with
    `json.dumps` instead of moto's model-driven serializer, and caches a per-request
    lookup of moto's dispatch.

    moto 5 serializes every answer by walking botocore's output shape member by member,
    every attribute value of every item included: about 30 % of its CPU time under the
    test suite (py-spy), more than the DynamoDB work itself, and once item answers were
    direct, `GetRecords` (every record's images) took 40 %. These answers are already
    DynamoDB JSON once moto's types are expanded (`dynamo_to_dict` also turns binary
    values into bytes). The same document results from leaving out `None` members and
    the keys the operation's answer does not have (moto adds a legacy
    `ConsumedCapacityUnits` to some), and writing bytes as base64 and timestamps as
    epoch seconds: checked against moto's own serializer on every answer of two whole
    integration-test runs (docs/local-stack.md), and by `infra/test_moto_server.py` on
    every answered operation in the suite. Other operations and every error keep
    moto's serializer. `method_names_from_class` (`inspect.getmembers` on every
    request) is cached.
    """
    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    model_driven = responses.BaseResponse.serialized

    @functools.lru_cache(maxsize=None)
    def answer_members(service, operation):
        model = responses.get_service_model(service).operation_model(operation)
        return frozenset(model.output_shape.members)

    def serialized(self, action_result):
        result = action_result.result
        operation = self._get_action()
        service = self.boto3_service_name
        if isinstance(result, dict) and operation in DIRECT_ANSWERS[service]:
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            headers.update(self.response_headers)
            members = answer_members(service, operation)
            answer = {
                k: without_none(v) for k, v in result.items() if k in members and v is not None
            }
            return 200, headers, json.dumps(answer, default=json_extra)
        return model_driven(self, action_result)

    DynamoHandler.serialized = serialized
    DynamoDBStreamsHandler.serialized = serialized
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        responses.method_names_from_class
    )


class QuietRequestHandler(MotoRequestHandler):
    """Logs only the requests moto failed on (5xx). A line per request cost about 7 % of
    moto's CPU time under the test suite; `--trace` records every request instead."""

    def log_request(self, code="-", size="-"):
        if str(code).startswith("5"):
            super().log_request(code, size)


def freeze_after_full_collections() -> None:
    """Keep the cyclic garbage collector's pauses short as the tables grow.

    CPython's full (generation 2) collection walks every tracked object, and a moto
    holding a test suite's tables and stream history has millions: one took seconds,
    and under the global lock every request waited (the API's 5 s attempt timeout
    fired, stream records were given up). After each full collection the survivors
    are frozen (`gc.freeze()`), so the next one walks only what came since. Frozen
    objects are still freed by reference counting; only cycles among them leak,
    which a test server can afford. A collection over 100 ms is logged.
    """
    started = [0.0]

    def on_collection(phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.monotonic()
            return
        gc.freeze()
        pause = time.monotonic() - started[0]
        if pause > 0.1:
            print(
                f"moto_server: full garbage collection took {pause * 1000:.0f} ms "
                f"({gc.get_freeze_count()} objects frozen)",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(on_collection)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        usage="infra/moto.sh run [options]  (or .venv/bin/python infra/moto_server.py [options])",
    )
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument(
        "-p",
        "--port",
        type=int,
        default=int(os.environ.get("MOTO_PORT", 5000)),
        help="the port (default: $MOTO_PORT, else 5000); 0: any free port, see --port-file",
    )
    parser.add_argument(
        "--port-file",
        metavar="FILE",
        help="write the port to FILE once listening (atomically); removed when the server stops",
    )
    parser.add_argument(
        "--latency",
        default=os.environ.get("MOTO_LATENCY_MS", ""),
        help="per-operation latency in ms, e.g. read=4,write=6,transact=15 "
        "(default: $MOTO_LATENCY_MS, else none)",
    )
    parser.add_argument(
        "--no-conflicts",
        action="store_true",
        help="do not emulate DynamoDB's transaction conflicts",
    )
    parser.add_argument(
        "--trace",
        metavar="FILE",
        default=os.environ.get("MOTO_TRACE", ""),
        help="append one JSON line per DynamoDB request to FILE (default: $MOTO_TRACE, else off)",
    )
    args = parser.parse_args()
    try:
        latency = parse_latency(args.latency)
    except ValueError as e:
        parser.error(f"--latency / MOTO_LATENCY_MS: {e}")
    trace = Trace()
    if args.trace:
        try:
            trace.start(args.trace)
        except OSError as e:
            parser.error(f"--trace / MOTO_TRACE: {e}")

    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    freeze_after_full_collections()
    query_one_partition()
    answer_directly()
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = Emulation(moto_app, Latency(latency), conflicts=not args.no_conflicts, trace=trace)

    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=QuietRequestHandler
    )
    port = server.server_address[1]
    # moto builds some URLs from it (not DynamoDB's); the real port, also for `-p 0`.
    os.environ["MOTO_PORT"] = str(port)
    server.log_startup()
    try:
        if args.port_file:
            write_port_file(args.port_file, port)
        server.serve_forever()
    finally:
        server.server_close()
        if args.port_file:
            remove_port_file(args.port_file)


if __name__ == "__main__":
    main()
