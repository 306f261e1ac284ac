#!/bin/sh
# Logs every process that exits with a non-zero code or is killed (sources/processes).
# Usage: log-failed-exits.sh MOUNT [LOGFILE]
#   e.g. log-failed-exits.sh /run/wqfs /var/log/failed-exits.log
# The queue's filter keeps exit records only, and the server subscribes the kernel
# to exits only: forks and execs never reach it.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 MOUNT [LOGFILE]" >&2; exit 1; }
mount=$1 log=${2:-/dev/stdout}
queue="exits-$$"
touch "$mount/queues/$queue"
trap 'rm -f "$mount/queues/$queue"' EXIT INT TERM
echo 4096 > "$mount/queues/$queue.size"
echo "type=64 subtypes=8" > "$mount/queues/$queue.filter"
echo "$queue 1" > "$mount/sources/processes/watches"
# wqcat -t prints: TIME [MONOTONIC] exit PID code=N | signal=N[ core], and
# " tgid=T" for a thread of another process: keep processes that failed.
wqcat -t "$mount/queues/$queue" | awk '!/ tgid=/ && !/ code=0$/ { print; fflush() }' >> "$log"
