#!/bin/sh
# Logs every notification of a source, with a timestamp, until the queue goes away.
# Usage: log-notifications.sh MOUNT SOURCE [LOGFILE]
#   Makes queue SOURCE-log watching sources/SOURCE (watch ID 1), appends lines like
#   2026-11-22T10:00:00+00:00 type=256 subtype=3 watch=1 len=12 data=2a000000
#   (type=0 subtype=1 is a loss record: notifications were dropped).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 MOUNT SOURCE [LOGFILE]" >&2; exit 1; }
mount=$1 source=$2 log=${3:-/dev/stdout}
. "$(dirname "$0")/records.sh"
queue="$source-log"
touch "$mount/queues/$queue"
echo "$queue 1" >> "$mount/sources/$source/watches"
trap 'rm -f "$mount/queues/$queue"' EXIT INT TERM
while records=$(wq_read "$mount/queues/$queue"); do
    now=$(date -Iseconds)
    echo "$records" | while read -r type subtype watch length data; do
        echo "$now type=$type subtype=$subtype watch=$watch len=$length data=$data"
    done >> "$log"
done
