#!/usr/bin/env bash
# Usage: infra/moto.sh run [moto_server.py options]
#        infra/moto.sh start [moto_server.py options] | stop | reset | status
# moto's server, a local stand-in for the DynamoDB API, through infra/moto_server.py.
#
#   run     in the foreground: the one way moto is started (start, infra/lib.sh's private
#           stacks, tests/lib.rs, infra/coldstart.py). Options: -H HOST, -p PORT (0: any
#           free port), --port-file FILE (written once listening), --latency SPEC,
#           --no-conflicts, --trace FILE; see infra/moto_server.py. MOTO_LATENCY_MS and
#           MOTO_TRACE work as the flags do.
#   start   in the background on 127.0.0.1:$MOTO_PORT (default 5000), unless something
#           answers there already; pid and log in .local/
#   stop    stops what start started; reset wipes all its tables; status tells if it answers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command="${1:-}"
[ "$#" -eq 0 ] || shift
case "$command" in
    run)
        [ -x "$VENV/bin/moto_server" ] || die "moto is not installed in $VENV; run ./infra/setup.sh"
        # exec: the caller's process is moto's, so its pid, signals and parent-death
        # signal (tests/lib.rs) reach the server itself.
        exec "$VENV/bin/python" "$REPO_ROOT/infra/moto_server.py" "$@"
        ;;
    start) moto_start "$MOTO_PORT" "$@" ;;
    stop) moto_stop ;;
    reset) moto_reset ;;
    status)
        if http_up "$MOTO_PORT"; then log "moto answering on 127.0.0.1:$MOTO_PORT"; else log "moto not running on port $MOTO_PORT"; exit 1; fi ;;
    *) echo "usage: $0 run [options] | start [options] | stop | reset | status" >&2; exit 2 ;;
esac
