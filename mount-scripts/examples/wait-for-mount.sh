#!/bin/sh
# Waits until something is mounted at PATH (sources/mounts), then runs a command.
# Usage: wait-for-mount.sh MOUNT PATH COMMAND [ARG...]
#   e.g. wait-for-mount.sh /run/wqfs /media/backup rsync -a /home /media/backup
# The watch is made before the check, so a mount that lands in between is seen
# either by the check or as a record.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 MOUNT PATH COMMAND [ARG...]" >&2; exit 1; }
mount=$1 target=$2
shift 2
queue="wait-mount-$$"
fifo=$(mktemp -u)
reader=
cleanup() { [ -z "$reader" ] || kill "$reader" 2>/dev/null; rm -f "$mount/queues/$queue" "$fifo"; }
trap cleanup EXIT
trap 'exit 1' INT TERM
touch "$mount/queues/$queue"
echo "type=2 subtypes=0" > "$mount/queues/$queue.filter"    # new mounts only
echo "$queue 1" > "$mount/sources/mounts/watches"
if ! mountpoint -q "$target"; then
    # wqcat prints: mount TARGET SOURCE FSTYPE OPTIONS id=… parent=…
    mkfifo "$fifo"
    wqcat "$mount/queues/$queue" > "$fifo" &
    reader=$!
    while read -r action path rest; do
        [ "$action" = mount ] && [ "$path" = "$target" ] && break
    done < "$fifo"
fi
cleanup
trap - EXIT
exec "$@"
