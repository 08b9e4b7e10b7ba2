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

Usage: .venv/bin/python infra/moto_server.py [-H HOST] [-p PORT] [--latency SPEC]
       [--no-conflicts]
"""

import argparse
import binascii
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

from werkzeug.serving import run_simple
from werkzeug.wsgi import get_input_stream

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
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


def key_attributes(table_name, region):
    """The (hash, range) key attribute names of a table, from moto's backend, or None
    if there is no such table (moto then answers the request's error itself). Looked up
    across moto's accounts, the request's region first; `list()` copies each dict in one
    step, so tables created meanwhile by other threads cannot break the iteration."""
    found = None
    for account in list(dynamodb_backends.values()):
        for backend_region, backend in list(account.items()):
            table = backend.tables.get(table_name)
            if table is None:
                continue
            if backend_region == region:
                return table.hash_key_attr, table.range_key_attr
            found = found or (table.hash_key_attr, table.range_key_attr)
    return found


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


# ---------------------------------------------------------------------------------
# The application

CONTROL_PATH = "/_emulation/latency"


class Emulation:
    """The WSGI application: moto behind one lock, with latency slept outside it and
    transaction conflicts decided before it."""

    def __init__(self, moto_app, latency, conflicts):
        self.moto_app = moto_app
        self.latency = latency
        self.claims = Claims() if conflicts else None
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self.control(environ, start_response)
        operation = dynamodb_operation(environ)
        if operation is None:
            return self.apply(environ, start_response)
        request = read_json_body(environ)
        if request is None:
            # Malformed: moto answers the error DynamoDB would.
            return self.apply(environ, start_response)
        region = request_region(environ)
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
                body = json.loads(get_input_stream(environ).read() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
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

    @staticmethod
    def reply(start_response, status, body):
        payload = json.dumps(body).encode()
        start_response(
            status,
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
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
    args = parser.parse_args()
    try:
        latency = parse_latency(args.latency)
    except ValueError as e:
        parser.error(f"--latency / MOTO_LATENCY_MS: {e}")
    os.environ.setdefault("MOTO_PORT", str(args.port))

    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    moto_app = DomainDispatcherApplication(create_backend_app)
    app = Emulation(moto_app, Latency(latency), conflicts=not args.no_conflicts)

    run_simple(
        args.host,
        args.port,
        app,
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
