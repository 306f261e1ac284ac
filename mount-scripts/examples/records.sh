# Shell functions the examples share: read a watch queue with dd and split what one
# read() returns into records with od, printing one line per record:
#   TYPE SUBTYPE WATCH_ID LENGTH PAYLOAD_HEX
# Source it: . "$(dirname "$0")/records.sh"

# wq_read QUEUE: one blocking read (64 KiB, never ENOBUFS). Returns 1 at end of file
# (the queue was removed or the mount went away).
wq_read() {
    hex=$(dd if="$1" bs=65536 count=1 status=none | od -An -v -tx1) || return 1
    [ -n "$hex" ] || return 1
    # shellcheck disable=SC2086
    set -- $hex
    while [ $# -ge 8 ]; do
        type=$((0x$3$2$1))
        subtype=$((0x$4))
        length=$((0x$5 & 0x7f))
        watch=$((0x$6))
        [ "$length" -ge 8 ] && [ "$length" -le $# ] || { echo "bad record length $length" >&2; return 2; }
        shift 8
        payload=""
        i=8
        while [ $i -lt "$length" ]; do payload="$payload$1"; shift; i=$((i + 1)); done
        echo "$type $subtype $watch $length ${payload:--}"
    done
}
