#!/usr/bin/env python3
"""Process start to first handled event, for each Lambda function binary.

Plays the Lambda Runtime API on loopback: starts the binary with the environment Lambda
gives a provided.al2023 function, serves one event on
`GET /2018-06-01/runtime/invocation/next` and stops the clock when
`POST /2018-06-01/runtime/invocation/{id}/response` arrives. The functions talk to a
local moto server (infra/moto_server.py, started by `infra/moto.sh run` on a free port)
through DYNAMODB_ENDPOINT, so the first event includes the SDK setup and real DynamoDB
API round trips over loopback HTTP (no TLS).

Reported per function: `init` (spawn to the first `next` request: Lambda's Init
Duration), `first event` (spawn to the response) and the peak RSS (the binary's VmHWM
once it has answered). Each run gets a fresh process and a fresh Runtime API port.

Usage (from the repository root; needs ./infra/setup.sh):
    .venv/bin/python infra/coldstart.py [--build] [--runs 10] [FUNCTION...]
--build runs `cargo build --release -p <package>` for each function first, one package
per invocation so that cargo resolves each function's features alone, as `sam build` does.
Binaries are taken from $CARGO_TARGET_DIR/release (default target/release).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TENANT = "coldstart"
TABLE = "coldstart"
MEMORY_MB = {
    "segments": 256,
    "fields": 256,
    "customers": 256,
    "reports": 512,
    "rules-api": 1024,
    "assign": 1024,
}
# binary -> (package, route of the event it gets; None: a DynamoDB stream event)
FUNCTIONS = {
    "segments": ("segments", ("GET", "/segments")),
    "fields": ("fields", ("GET", "/fields")),
    "customers": ("customers", ("GET", "/customers")),
    "reports": ("reports", ("GET", "/reports/annual-sales", "year=2026")),
    "rules-api": ("rules-api", ("GET", "/rules")),
    "assign": ("assign", None),
}


def http_event(method, path, query="", body=None):
    """An API Gateway HTTP API (payload 2.0) event with the JWT authorizer's claims."""
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "accept": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "coldstart/1.0",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "coldstart/1.0",
            },
            "requestId": "coldstart-" + uuid.uuid4().hex[:12],
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "01/Jan/2026:12:00:00 +0000",
            "timeEpoch": 1767268800000,
            "authorizer": {
                "jwt": {
                    "claims": {"sub": "user@coldstart", "tenant_id": TENANT},
                    "scopes": None,
                }
            },
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    if body is not None:
        event["headers"]["content-type"] = "application/json"
        event["body"] = json.dumps(body)
    return event


def stream_event(item):
    """A DynamoDB stream batch (as Lambda delivers it) with one INSERT of `item`."""
    keys = {"pk": item["pk"], "sk": item["sk"]}
    return {
        "Records": [
            {
                "eventID": "1",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": int(time.time()),
                    "Keys": keys,
                    "NewImage": item,
                    "SequenceNumber": "100000000000000000001",
                    "SizeBytes": 200,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000",
            }
        ]
    }


class Invocation:
    """One run's exchange with the runtime client (the Rust binary)."""

    def __init__(self, event):
        self.event = json.dumps(event).encode()
        self.request_id = str(uuid.uuid4())
        self.served = False
        self.t_next = None
        self.t_done = None
        self.outcome = None  # ("response" | "error" | "init-error", body)
        self.done = threading.Event()
        self.killed = threading.Event()


class RuntimeApi(BaseHTTPRequestHandler):
    """The Runtime API of one run: `invoke` serves each run on a fresh port, so a `next`
    poll that the previous (killed) process sent just before its death cannot take the
    next run's event."""

    protocol_version = "HTTP/1.1"
    current = None  # the run's Invocation (set on a per-run subclass)

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # a killed runtime's connection

    def _reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the runtime was killed meanwhile

    def do_GET(self):
        now = time.perf_counter_ns()
        inv = type(self).current
        if self.path != "/2018-06-01/runtime/invocation/next" or inv is None:
            return self._reply(404)
        if inv.served:
            # The runtime polls for the next event; it is killed before one comes.
            inv.killed.wait(120)
            self.close_connection = True
            return
        inv.served = True
        inv.t_next = now
        deadline = int(time.time() * 1000) + 30_000
        self._reply(
            200,
            inv.event,
            [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", inv.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:coldstart"),
                ("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"),
            ],
        )

    def do_POST(self):
        now = time.perf_counter_ns()
        inv = type(self).current
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        if inv is None:
            return
        if self.path == f"/2018-06-01/runtime/invocation/{inv.request_id}/response":
            kind = "response"
        elif self.path.endswith("/error"):
            kind = "init-error" if "/init/" in self.path else "error"
        else:
            return
        inv.t_done = now
        inv.outcome = (kind, body.decode(errors="replace"))
        inv.done.set()


def lambda_env(binary, runtime_port, moto_port):
    name = f"coldstart-{binary}"
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB[binary]),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "_HANDLER": "bootstrap",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "coldstart",
        "AWS_SECRET_ACCESS_KEY": "coldstart",
        "AWS_SESSION_TOKEN": "coldstart",
        "TABLE_NAME": TABLE,
        "DYNAMODB_ENDPOINT": f"http://127.0.0.1:{moto_port}",
        "TENANT_CLAIM": "tenant_id",
        "CURSOR_SECRET": "coldstart-cursor-secret-0123456789",
        "LOG_LEVEL": "info",
        "STAGE": "coldstart",
    }
    return env


def peak_rss_kib(pid):
    """VmHWM of the running binary. Not the rusage of wait4: its ru_maxrss also counts
    the Python parent's memory that the child had before exec (about 48 MiB here)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return float("nan")


def invoke(binary_path, binary, event, moto_port, log_path):
    """Runs the binary for one event; returns (init ns, first event ns, max RSS KiB, outcome)."""
    inv = Invocation(event)
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("RunRuntimeApi", (RuntimeApi,), {"current": inv}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime_port = server.server_address[1]
    with open(log_path, "wb") as log:
        start = time.perf_counter_ns()
        proc = subprocess.Popen(
            [str(binary_path)],
            env=lambda_env(binary, runtime_port, moto_port),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd="/tmp",
        )
        finished = inv.done.wait(60)
        peak_kib = peak_rss_kib(proc.pid)
        proc.kill()
        proc.wait()
    inv.killed.set()
    server.shutdown()
    server.server_close()
    if not finished or inv.t_next is None:
        raise SystemExit(f"{binary}: no response within 60 s (log: {log_path})")
    return inv.t_next - start, inv.t_done - start, peak_kib, inv.outcome


def check(binary, outcome, log_path):
    kind, body = outcome
    if kind != "response":
        raise SystemExit(f"{binary}: {kind}: {body} (log: {log_path})")
    answer = json.loads(body)
    if FUNCTIONS[binary][1] is None:
        if answer.get("batchItemFailures"):
            raise SystemExit(f"{binary}: batch item failures {answer} (log: {log_path})")
    elif answer.get("statusCode") not in (200, 201):
        raise SystemExit(f"{binary}: status {answer.get('statusCode')}: {answer.get('body')} (log: {log_path})")
    return answer


def start_moto(log_path):
    """moto on a free port, started the one way (`infra/moto.sh run`, see
    infra/moto_server.py): returns (process, port) once it listens."""
    port_file = log_path.with_suffix(".port")
    port_file.unlink(missing_ok=True)
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(REPO / "infra" / "moto.sh"), "run", "-H", "127.0.0.1", "-p", "0", "--port-file", str(port_file)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            return proc, int(port_file.read_text())
        except (FileNotFoundError, ValueError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"moto exited during startup (log: {log_path}):\n{log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"moto was not listening within 30 s (log: {log_path})")


def create_table(port):
    import boto3  # moto's dependency, in .venv

    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return client


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("functions", nargs="*", default=list(FUNCTIONS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--logs", default=str(REPO / ".local" / "coldstart"))
    args = parser.parse_args()
    unknown = [f for f in args.functions if f not in FUNCTIONS]
    if unknown:
        raise SystemExit(f"unknown function(s) {unknown}; known: {list(FUNCTIONS)}")

    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    if args.build:
        for binary in args.functions:
            package = FUNCTIONS[binary][0]
            print(f"cargo build --release -p {package}", flush=True)
            subprocess.run(["cargo", "build", "--release", "-p", package], cwd=REPO, check=True)
    binaries = {b: target / "release" / b for b in args.functions}
    for binary, path in binaries.items():
        if not path.exists():
            raise SystemExit(f"{path} is missing: run with --build")
    # The customers binary seeds the customer whose stream record the assign function gets.
    if "assign" in args.functions and not (target / "release" / "customers").exists():
        raise SystemExit("the assign run needs the customers binary too: run with --build customers assign")

    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    moto, moto_port = start_moto(logs / "moto.log")
    try:
        client = create_table(moto_port)
        events = {}
        if "assign" in args.functions:
            seed = http_event("POST", "/customers", body={"email": "first@example.com"})
            _, _, _, outcome = invoke(
                target / "release" / "customers", "customers", seed, moto_port, logs / "seed.log"
            )
            answer = check("customers", outcome, logs / "seed.log")
            customer_id = json.loads(answer["body"])["id"]
            item = client.get_item(
                TableName=TABLE,
                Key={"pk": {"S": f"T#{TENANT}"}, "sk": {"S": f"CUSTOMER#{customer_id}"}},
                ConsistentRead=True,
            )["Item"]
            events["assign"] = stream_event(item)
        for binary, (_, route) in FUNCTIONS.items():
            if route is not None:
                events[binary] = http_event(*route)

        print(f"{'function':<10} {'init ms (median, min-max)':>26} {'first event ms (median, min-max)':>33} {'peak RSS MiB':>13}")
        for binary in args.functions:
            inits, firsts, rss = [], [], []
            for run in range(args.runs):
                log_path = logs / f"{binary}.log"
                init, first, maxrss, outcome = invoke(
                    binaries[binary], binary, events[binary], moto_port, log_path
                )
                check(binary, outcome, log_path)
                inits.append(init / 1e6)
                firsts.append(first / 1e6)
                rss.append(maxrss / 1024)

            def span(values):
                return f"{statistics.median(values):6.1f} ({min(values):.1f}-{max(values):.1f})"

            print(f"{binary:<10} {span(inits):>26} {span(firsts):>33} {max(rss):13.1f}", flush=True)
    finally:
        moto.terminate()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            moto.kill()
    print(f"({args.runs} runs each; {platform.machine()} release binaries from {target / 'release'}; logs of the last run in {logs})")


if __name__ == "__main__":
    sys.exit(main())
