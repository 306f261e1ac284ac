#!/bin/sh
# Where a system source's latency goes, by scheduler trace (BENCHMARKS.md, "Where
# the rest goes"): probe.c under `perf sched record`, through a fresh wqfs mount and
# against the mechanism read directly, then decompose.py on both traces.
#   Benchmarks/sched-probe/run.sh devices|processes [ROUNDS] [WQFS_OPTIONS]
# Root; needs perf (Debian: linux-perf) and a release build (swift build -c release).
set -eu
source=$1 rounds=${2:-400} options=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
work=$(mktemp -d /tmp/wqfs-sched.XXXXXX)
cleanup() {
    fusermount3 -u -z "$work/mnt" 2>/dev/null || true
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
cc -O2 -o "$work/probe" "$here/probe.c"
cc -O2 -I "$root/include" -o "$work/floor" "$root/Benchmarks/sources-floor/floor.c"
mkdir "$work/mnt"
"$root/.build/release/wqfs" "$work/mnt" -f -o "sources=$source${options:+,$options}" &
server=$!
while ! grep -q " $work/mnt fuse.wqfs " /proc/self/mounts; do sleep 0.05; done
touch "$work/mnt/queues/q"
echo "q 1" > "$work/mnt/sources/$source/watches"
cd "$work"
perf sched record -q -o relay.data -- ./probe ./floor "$source" "$rounds" "$work/mnt/queues/q" 2>/dev/null | sed 's/^/wqfs:  /'
echo "!q" > "$work/mnt/sources/$source/watches"
perf sched record -q -o direct.data -- ./probe ./floor "$source" "$rounds" 2>/dev/null | sed 's/^/floor: /'
perf sched timehist -i relay.data -w > relay.txt 2>/dev/null
perf sched timehist -i direct.data -w > direct.txt 2>/dev/null
python3 "$here/decompose.py" probe floor relay:relay.txt direct:direct.txt
