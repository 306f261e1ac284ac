#!/bin/sh
# Fans one source out to several queues, each with its own filter, and shows what
# each queue received. Usage: fan-out.sh MOUNT
#   alerts:   subtypes 0-9 only       audit: everything
#   flagged:  records whose type-specific flag 0 (info bit 16) is set
set -eu
[ $# -eq 1 ] || { echo "usage: $0 MOUNT" >&2; exit 1; }
mount=$1
. "$(dirname "$0")/records.sh"
mkdir "$mount/sources/app"
for queue in alerts audit flagged; do touch "$mount/queues/$queue"; done
trap 'rm -f "$mount/queues/alerts" "$mount/queues/audit" "$mount/queues/flagged"; rmdir "$mount/sources/app"' EXIT
echo "type=user subtypes=0-9" > "$mount/queues/alerts.filter"
echo "type=user info=0x10000/0x10000" > "$mount/queues/flagged.filter"
printf 'alerts 1\naudit 2\nflagged 3\n' > "$mount/sources/app/watches"
# Three notifications in one write: all are posted, or none.
printf '3 str=disk\n42 info=1 u32=7\n200 hex=cafe\n' > "$mount/sources/app/post"
for queue in alerts audit flagged; do
    echo "== $queue (TYPE SUBTYPE WATCH LEN DATA)"
    wq_read "$mount/queues/$queue" </dev/null
done
