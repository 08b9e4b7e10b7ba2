"""moto's server, handling one request at a time.

`moto_server` handles requests on concurrent threads, but moto's DynamoDB backend is
not safe under concurrency: TransactWriteItems snapshots every table it touches and,
when a condition fails, restores the snapshot, undoing writes that other requests made
in the meantime; and condition checks can interleave with other writes. Real DynamoDB
applies each request atomically. Serializing requests restores that, so tests may run
in parallel against one moto.

It also replaces moto's TransactWriteItems. moto deep-copies every table a
transaction touches (once per item) so that it can roll back, which makes each
transaction cost O(table size, stream history included) and strands stream iterators
on the discarded copy. DynamoDB checks every condition against the state before the
transaction and then applies all writes or none; this does the same: all conditions
first, then the writes, so there is nothing to roll back.

Usage: .venv/bin/python infra/moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))

    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    moto_app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        # The whole response is produced under the lock.
        with lock:
            return list(moto_app(environ, start_response))

    run_simple(
        args.host,
        args.port,
        serialized,
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
