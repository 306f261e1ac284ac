#!/bin/sh
# Where a system source's latency goes, by scheduler trace (BENCHMARKS.md, "Where
# the rest goes"): probe.c under `perf sched record`, through a fresh wqfs mount,
# through cfloor's C relay (a minimal libfuse filesystem relaying the same
# mechanism) and against the mechanism read directly; then decompose.py on the
# three traces.
#   Benchmarks/sched-probe/run.sh devices|processes [ROUNDS] [WQFS_OPTIONS]
# Root; needs perf (Debian: linux-perf) and a release build (swift build -c release).
set -eu
source=$1 rounds=${2:-400} options=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
work=$(mktemp -d /tmp/wqfs-sched.XXXXXX)
cleanup() {
    fusermount3 -u -z "$work/mnt" 2>/dev/null || true
    fusermount3 -u -z "$work/cmnt" 2>/dev/null || true
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    [ -n "${relay:-}" ] && kill "$relay" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
cc -O2 -o "$work/probe" "$here/probe.c"
cc -O2 -I "$root/include" -o "$work/floor" "$root/Benchmarks/sources-floor/floor.c"
# shellcheck disable=SC2046 # pkg-config's flags are words
cc -O2 -I "$root/include" -o "$work/cfloor" "$root/Benchmarks/cfloor/cfloor.c" $(pkg-config --cflags --libs fuse3)
mkdir "$work/mnt" "$work/cmnt"
"$root/.build/release/wqfs" "$work/mnt" -f -o "sources=$source${options:+,$options}" &
server=$!
while ! grep -q " $work/mnt fuse.wqfs " /proc/self/mounts; do sleep 0.05; done
touch "$work/mnt/queues/q"
echo "q 1" > "$work/mnt/sources/$source/watches"
cd "$work"
perf sched record -q -o relay.data -- ./probe ./floor "$source" "$rounds" "$work/mnt/queues/q" 2>/dev/null | sed 's/^/wqfs:  /'
echo "!q" > "$work/mnt/sources/$source/watches"
"$work/cfloor" "$work/cmnt" 1 "$source" &
relay=$!
while ! grep -q " $work/cmnt fuse.cfloor " /proc/self/mounts; do sleep 0.05; done
perf sched record -q -o crelay.data -- ./probe ./floor "$source" "$rounds" "$work/cmnt/q0" 2>/dev/null | sed 's/^/C relay: /'
perf sched record -q -o direct.data -- ./probe ./floor "$source" "$rounds" 2>/dev/null | sed 's/^/floor: /'
for trace in relay crelay direct; do perf sched timehist -i $trace.data -w > $trace.txt 2>/dev/null; done
python3 "$here/decompose.py" probe floor relay:relay.txt relay:crelay.txt:cfloor-relay direct:direct.txt
