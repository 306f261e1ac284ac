#!/bin/sh
# Runs a command each time the kernel adds a device of a subsystem (sources/devices),
# with the device's path in $DEVPATH.
# Usage: on-device.sh MOUNT SUBSYSTEM COMMAND [ARG...]
#   e.g. on-device.sh /run/wqfs block sh -c 'logger "new disk $DEVPATH"'
# The full properties of recent events are in MOUNT/sources/devices/table.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 MOUNT SUBSYSTEM COMMAND [ARG...]" >&2; exit 1; }
mount=$1 subsystem=$2
shift 2
queue="dev-$subsystem-$$"
touch "$mount/queues/$queue"
trap 'rm -f "$mount/queues/$queue"' EXIT INT TERM
echo "type=65 subtypes=0" > "$mount/queues/$queue.filter"    # add only
echo "$queue 1" > "$mount/sources/devices/watches"
# wqcat prints: KERNEL[SEQNUM] add DEVPATH (SUBSYSTEM) [dev=MAJOR:MINOR]
wqcat "$mount/queues/$queue" | while read -r kernel action devpath sub rest; do
    [ "$sub" = "($subsystem)" ] || continue
    DEVPATH=$devpath "$@" || echo "$0: command failed for $devpath" >&2
done
