"""moto's server, handling one request at a time.

`moto_server` handles requests on concurrent threads, but moto's DynamoDB backend is
not safe under concurrency: TransactWriteItems snapshots every table it touches and,
when a condition fails, restores the snapshot, undoing writes that other requests made
in the meantime; and condition checks can interleave with other writes. Real DynamoDB
applies each request atomically. Serializing requests restores that, so tests may run
in parallel against one moto.

Usage: .venv/bin/python infra/moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


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
