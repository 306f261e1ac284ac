"""Decomposes `perf sched timehist -w` of a latency driver's rounds.

relay (wqfs, or cfloor's C relay): trigger wakes the relay thread (wqfs-events,
    cfloor-relay) -> it runs -> it wakes the reader -> reader runs
direct (floor): trigger wakes the reader -> reader runs
The trigger is the task named TRIGGER the idle task (timer) wakes most: it sleeps
between rounds; the reader is the task named READER it (or the relay thread) wakes
most. Each round is also split by where its last wake-up put the reader: on the
waker's vCPU, or on the other one.
    decompose.py TRIGGER READER relay:TRACE[:THREAD] ... direct:TRACE
(THREAD: the relay thread's name, wqfs-events unless given)
"""
import re, sys, statistics as st
from collections import Counter

def parse(path):
    wakes, outs = [], []
    for line in open(path):
        m = re.match(r'\s*([\d.]+)\s+\[(\d+)\]\s+(\S+)\s+awakened: (\S+)', line)
        if m:
            wakes.append((float(m[1]) * 1e6, int(m[2]), m[3], m[4])); continue
        m = re.match(r'\s*([\d.]+)\s+\[(\d+)\]\s+(\S+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)', line)
        if m:  # switch-out: time, cpu, task, wait, sch delay, run time (ms)
            outs.append((float(m[1]) * 1e6, int(m[2]), m[3], float(m[6]) * 1e3))
    return wakes, outs

def analyse(path, driver, reader_name, relay, thread_name):
    wakes, outs = parse(path)
    trigger = Counter(w[3] for w in wakes if w[2] == 'swapper' and w[3].startswith(driver)).most_common(1)[0][0]
    runs = {}
    for t, cpu, task, run in outs:
        runs.setdefault(task, []).append((t - run, t, cpu))
    def run_after(task, t):
        return next((r for r in runs.get(task, []) if r[0] >= t - 0.5), None)
    rows = []
    if relay:
        thread = Counter(w[3] for w in wakes if w[2] == trigger and w[3].startswith(thread_name)).most_common(1)[0][0]
        reader = Counter(w[3] for w in wakes if w[2] == thread and w[3].startswith(reader_name)).most_common(1)[0][0]
        for t, cpu, waker, wakee in wakes:
            if waker != trigger or wakee != thread: continue
            r = run_after(thread, t)
            if not r: continue
            w2 = next((w for w in wakes if w[2] == thread and w[3] == reader and r[0] - 0.5 <= w[0] <= r[1] + 0.5), None)
            if not w2: continue
            r2 = run_after(reader, w2[0])
            if not r2: continue
            rows.append((r[0] - t, w2[0] - r[0], r2[0] - w2[0], r2[0] - t, w2[1] == r2[2]))
    else:
        reader = Counter(w[3] for w in wakes if w[2] == trigger and w[3].startswith(reader_name)).most_common(1)[0][0]
        for t, cpu, waker, wakee in wakes:
            if waker != trigger or wakee != reader: continue
            r = run_after(reader, t)
            if r: rows.append((r[0] - t, cpu == r[2]))
    return rows

def summary(xs):
    xs = sorted(xs)
    return f'median {st.median(xs):6.1f} µs, p90 {xs[int(len(xs) * .9)]:6.1f}'

def split(rows, total, name):
    """The round's total by where the reader ran: on its waker's vCPU or not."""
    for label, here in (("on the waker's vCPU", True), ('on the other vCPU', False)):
        part = [r[total] for r in rows if r[-1] == here]
        if part:
            print(f'  {name} {label + ":":20s} {len(part):4d} rounds, {summary(part)}')

if __name__ == '__main__':
    driver, reader_name = sys.argv[1], sys.argv[2]
    for spec in sys.argv[3:]:
        mode, path, *thread = spec.split(':')
        relay = mode == 'relay'
        rows = analyse(path, driver, reader_name, relay, thread[0] if thread else 'wqfs-events')
        print(f'{path}: {len(rows)} rounds')
        if relay:
            for i, name in enumerate(['relay thread woken -> running', 'relay thread running -> reader woken',
                                      'reader woken -> running', 'event -> reader running']):
                print(f'  {name:38s} {summary([r[i] for r in rows])}')
            split(rows, 2, 'reader woken -> running,')
            split(rows, 3, 'event -> reader running,')
        else:
            print(f'  {"reader woken -> running":38s} {summary([r[0] for r in rows])}')
            split(rows, 0, 'reader woken -> running,')
