#!/usr/bin/env bash
# Usage: infra/moto.sh start|stop|reset|status   (port: $MOTO_PORT, default 5000)
# Runs moto's server, a local stand-in for the DynamoDB API, in the background.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
    start) moto_start ;;
    stop) moto_stop ;;
    reset) moto_reset ;;
    status)
        if http_up "$MOTO_PORT"; then log "moto answering on 127.0.0.1:$MOTO_PORT"; else log "moto not running on port $MOTO_PORT"; exit 1; fi ;;
    *) echo "usage: $0 start|stop|reset|status" >&2; exit 2 ;;
esac
