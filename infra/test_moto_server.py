#!/usr/bin/env python3
"""Checks `infra/moto_server.py`'s direct answers against moto's own serializer.

`answer_directly` writes the answers of item operations and of `GetRecords` with
`json.dumps` instead of moto's model-driven serializer. This serves moto as
`moto_server.py` does, on a loopback port in this process, runs every one of those
operations through boto3 on items with every attribute type, binary included, and fails
unless each direct answer equals what moto's serializer gives for the same result, as
parsed JSON, with the same status and content type. Run by `./infra/test.sh`:

    .venv/bin/python infra/test_moto_server.py
"""

import json
import os
import sys
import threading

import boto3
from moto.core import responses
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_server  # noqa: E402
from moto_server import DomainDispatcherApplication, create_backend_app, make_server  # noqa: E402

TABLE = "t"
ITEM = {
    "pk": {"S": "T#a"},
    "sk": {"S": "CUSTOMER#1"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\x01binary\xff"},
    "flag": {"BOOL": True},
    "none": {"NULL": True},
    "m": {"M": {"nested": {"L": [{"S": "x"}, {"N": "1"}]}}},
    "ss": {"SS": ["a", "b"]},
    "bs": {"BS": [b"\x01", b"\x02"]},
}
KEY = {"pk": ITEM["pk"], "sk": ITEM["sk"]}


def calls(dynamodb, streams):
    """Every directly answered operation, found or not, each with what it returns."""
    dynamodb.put_item(TableName=TABLE, Item=ITEM)
    dynamodb.put_item(TableName=TABLE, Item=ITEM, ReturnValues="ALL_OLD")
    dynamodb.get_item(TableName=TABLE, Key=KEY)
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "T#a"}, "sk": {"S": "missing"}})
    dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "T#a"}},
        Limit=1,
    )
    dynamodb.scan(TableName=TABLE)
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [KEY]}})
    dynamodb.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": KEY}}])
    dynamodb.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "13"}},
        ReturnValues="ALL_NEW",
    )
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**ITEM, "sk": {"S": "CUSTOMER#2"}}}}
        ]
    )
    dynamodb.batch_write_item(
        RequestItems={TABLE: [{"PutRequest": {"Item": {**ITEM, "sk": {"S": "CUSTOMER#3"}}}}]}
    )
    dynamodb.delete_item(TableName=TABLE, Key=KEY, ReturnValues="ALL_OLD")
    dynamodb.delete_item(TableName=TABLE, Key=KEY)
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    streams.get_records(ShardIterator=iterator)


def main() -> int:
    model_driven = responses.BaseResponse.serialized
    moto_server.answer_directly()
    direct = DynamoHandler.serialized
    checked, failures = [], []

    def compared(self, action_result):
        answer = direct(self, action_result)
        operation = self._get_action()
        if operation in moto_server.DIRECT_ANSWERS[self.boto3_service_name]:
            expected = model_driven(self, action_result)
            same = (
                answer[0] == expected[0]
                and answer[1]["Content-Type"] == expected[1]["Content-Type"]
                and json.loads(answer[2]) == json.loads(expected[2])
            )
            checked.append(operation)
            if not same:
                failures.append(f"{operation}: direct {answer!r}\n  moto {expected!r}")
        return answer

    DynamoHandler.serialized = compared
    DynamoDBStreamsHandler.serialized = compared
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=moto_server.QuietRequestHandler
    )
    os.environ["MOTO_PORT"] = str(server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = {
        "endpoint_url": f"http://127.0.0.1:{server.server_address[1]}",
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    dynamodb = boto3.client("dynamodb", **client)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    calls(dynamodb, boto3.client("dynamodbstreams", **client))
    server.shutdown()

    missing = set().union(*moto_server.DIRECT_ANSWERS.values()) - set(checked)
    for failure in failures:
        print(f"test_moto_server: differs: {failure}", file=sys.stderr)
    if missing:
        print(f"test_moto_server: not exercised: {sorted(missing)}", file=sys.stderr)
    if failures or missing:
        return 1
    print(f"test_moto_server: {len(checked)} direct answers equal moto's serializer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
