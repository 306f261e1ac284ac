#!/bin/sh
# Waits for a notification of a given subtype from a source, then runs a command.
# Usage: wait-for-subtype.sh MOUNT SOURCE SUBTYPE COMMAND [ARG...]
#   e.g. wait-for-subtype.sh /run/wqfs deploys 7 systemctl restart app
# The queue's filter does the waiting: only that subtype reaches the queue.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 MOUNT SOURCE SUBTYPE COMMAND [ARG...]" >&2; exit 1; }
mount=$1 source=$2 subtype=$3
shift 3
. "$(dirname "$0")/records.sh"
queue="wait-$source-$$"
touch "$mount/queues/$queue"
trap 'rm -f "$mount/queues/$queue"' EXIT INT TERM
echo "type=$(cat "$mount/sources/$source/type") subtypes=$subtype" > "$mount/queues/$queue.filter"
echo "$queue 1" >> "$mount/sources/$source/watches"
while records=$(wq_read "$mount/queues/$queue"); do
    # A removal record (type 0 subtype 0) means the source is gone: stop waiting.
    if echo "$records" | grep -q "^0 0 "; then echo "source $source was removed" >&2; exit 1; fi
    if echo "$records" | grep -q "^[1-9][0-9]* $subtype "; then
        rm -f "$mount/queues/$queue"
        trap - EXIT
        exec "$@"
    fi
done
exit 1
