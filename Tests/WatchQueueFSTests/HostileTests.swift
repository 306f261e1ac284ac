import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif
import WatchQueueCore
import WatchQueueFS

// Issue 6: a hostile second user on an `allow_other` mount, and faults (killed and
// interrupted readers, removal under load, lazy unmount, SIGTERM, open/close
// cycles). Every attempt must get the right errno and leave the other user's
// objects and records exactly as they were; after every fault the server still
// serves, or has exited cleanly, with nothing left waiting and no memory growth.

/// The victim: an ordinary user other than the attacker (nobody, 65534).
private let victim = 4242

/// Shell helpers for these scripts (named apart from the fixture's own prelude).
/// `hw_wait CONDITION`: polls every 20 ms, fails after 15 s.
/// `hw_field QUEUE KEY`: one number from the queue's status.
private let helpers = #"""
    hw_wait() { _n=0; until eval "$1"; do _n=$((_n+1)); if [ $_n -gt 750 ]; then echo "timed out: $1" >&2; return 1; fi; sleep 0.02; done; }
    hw_field() { sed -n "s/^$2 //p" "queues/$1.status"; }

    """#

/// Runs `script` as `uid` (and gid `uid`, no supplementary groups) in the mount.
private func asUser(_ m: Mount, _ uid: Int, _ script: String, timeout: TimeInterval = 60) throws -> Outcome {
    try run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/bin/sh", "-c", helpers + script],
            directory: m.path, environment: m.environment, timeout: timeout)
}

/// Runs `script` as root in the mount, with the helpers.
private func asRoot(_ m: Mount, _ script: String, timeout: TimeInterval = 60) throws -> Outcome {
    try run("/bin/sh", ["-c", helpers + script], directory: m.path, environment: m.environment, timeout: timeout)
}

/// Runs `(label, command)` pairs in one shell and returns each command's output
/// (stdout and stderr), by label.
private func attempts(_ m: Mount, as uid: Int, _ cases: [(String, String)]) throws -> [String: String] {
    let script = cases.map { "echo '@@ \($0.0)'; ( \($0.1) ) 2>&1" }.joined(separator: "\n")
    let outcome = try asUser(m, uid, script)
    var results: [String: String] = [:]
    for section in outcome.stdout.components(separatedBy: "@@ ").dropFirst() {
        let label = String(section.prefix { $0 != "\n" })
        results[label] = String(section.dropFirst(label.count + 1))
    }
    return results
}

/// The server's resident set in kB, from /proc/PID/status.
private func residentKB(_ m: Mount) throws -> Int {
    let pid = try #require(m.server?.processIdentifier)
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
    return try #require(Int(line.split(separator: " ")[1]))
}

/// AddressSanitizer's allocator keeps freed memory in quarantine, so a sanitized
/// server's RSS says nothing about leaks (mount-scripts/sanitize sets ASAN_OPTIONS).
private let rssIsMeaningful = ProcessInfo.processInfo.environment["ASAN_OPTIONS"] == nil

/// Waits until the server has exited; its status, or nil if it is still running.
private func serverExit(_ m: Mount, within seconds: TimeInterval) -> Int32? {
    guard let server = m.server else { return nil }
    let deadline = Date(timeIntervalSinceNow: seconds)
    while server.isRunning && Date() < deadline { usleep(20_000) }
    return server.isRunning ? nil : server.terminationStatus
}

/// Checks `posted == filtered + lost + read + queued` and nothing waiting, from the status text.
private func expectBalanced(_ m: Mount, _ queue: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let s = try m.status(queue)
    let (posted, filtered, lost, read, queued) = (s["posted"] ?? -1, s["filtered"] ?? 0, s["lost"] ?? 0, s["read"] ?? 0, s["queued"] ?? 0)
    #expect(posted == filtered + lost + read + queued, "\(queue): \(s)", sourceLocation: sourceLocation)
    #expect(s["waiting"] == 0, "\(queue): \(s)", sourceLocation: sourceLocation)
}

/// The outcome of a script run on another thread.
private final class ScriptResult: @unchecked Sendable {
    private let condition = NSCondition()
    private var outcome: Outcome?
    private var done = false

    func set(_ outcome: Outcome?) {
        condition.lock()
        self.outcome = outcome
        done = true
        condition.broadcast()
        condition.unlock()
    }

    func wait(seconds: TimeInterval) -> Outcome? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while !done && condition.wait(until: deadline) {}
        return outcome
    }
}

extension MountTests {
    @Suite("hostile second user") struct Hostile {
        @Test("mount options: per-user limits default to a quarter of the mount's")
        func perUserOptionDefaults() throws {
            let defaults = try MountOptions.limits(from: [])
            #expect(defaults.maxQueuesPerUser == 2_500 && defaults.maxSourcesPerUser == 50_000
                    && defaults.maxSlotsPerUser == 524_288)
            #expect(defaults == Limits())
            let derived = try MountOptions.limits(from: [("max_queues", "40"), ("max_slots", "2"), ("max_user_sources", "7")])
            #expect(derived.maxQueuesPerUser == 10 && derived.maxSlotsPerUser == 1 && derived.maxSourcesPerUser == 7)
            #expect(throws: WQError.self) { try MountOptions.limits(from: [("max_user_queues", "0")]) }
        }

        @Test("another user's queue and sources: every attempt refused with its errno, nothing changed")
        func cannotTouchAnotherUsersObjects() throws {
            try withMount(["allow_other"]) { m throws in
                let setup = try asUser(m, victim, """
                    set -e
                    touch queues/vq && mkdir sources/vs && mkdir -m 0700 sources/vp
                    echo 'vq 5' > sources/vs/watches && echo 'vq 6' > sources/vp/watches
                    echo 'type=user subtypes=1-3' > queues/vq.filter && echo 32 > queues/vq.size
                    printf '1 u32=7\\n2 str=hello\\n9 u8=1\\n' > sources/vs/post && echo '3 u8=2' > sources/vp/post
                    """)
                #expect(setup.status == 0, "\(setup)")
                let snapshot = """
                    for f in queues/vq.status queues/vq.filter queues/vq.size sources/vs/watches sources/vs/id \
                             sources/vs/type sources/vp/watches sources/vp/id; do echo "== $f"; cat "$f"; done
                    stat -c '%n %a %u %g %Y %Z' queues/vq queues/vq.size queues/vq.filter queues/vq.status \
                        sources/vs sources/vs/* sources/vp sources/vp/*
                    """
                let before = try asRoot(m, snapshot)
                #expect(before.status == 0 && before.stderr.isEmpty, "\(before)")

                let eacces = "errno=EACCES\n", eperm = "Operation not permitted", denied = "Permission denied"
                let expected: [(String, String, String)] = [
                    ("read the queue", "$C read queues/vq 4096 nonblock", eacces),
                    ("read its status", "$C read queues/vq.status 4096", eacces),
                    ("read its filter", "$C read queues/vq.filter 4096", eacces),
                    ("read its size", "$C read queues/vq.size 4096", eacces),
                    ("poll it", "$C poll queues/vq 0", eacces),
                    ("write it", "$C write queues/vq", eacces),
                    ("resize by file", "echo 1 | $C put queues/vq.size", eacces),
                    ("resize by ioctl", "$C setsize queues/vq 1", eacces),
                    ("replace the filter", "echo none | $C put queues/vq.filter", eacces),
                    ("append to the filter", "echo type=1 | $C put queues/vq.filter append", eacces),
                    ("truncate the filter", "truncate -s 0 queues/vq.filter", denied),
                    ("re-create it", "set -C; : > queues/vq", "File exists"),
                    ("open it truncating", ": > queues/vq.size", denied),
                    ("mknod over it", "mknod queues/vq p", "File exists"),
                    ("remove it", "rm -f queues/vq", eperm),
                    ("remove a companion", "rm -f queues/vq.status", eperm),
                    ("rename it", "mv queues/vq queues/mine", eperm),
                    ("rename over it", "touch queues/nq && mv -f queues/nq queues/vq", eperm),
                    ("hard-link it", "ln queues/vq queues/link", eperm),
                    ("chmod it", "chmod 666 queues/vq", eperm),
                    ("chmod its status", "chmod 444 queues/vq.status", eperm),
                    ("chown it", "chown 65534 queues/vq", eperm),
                    ("chgrp its filter", "chgrp 65534 queues/vq.filter", eperm),
                    ("set its times", "touch -c -d 2001-01-01 queues/vq", eperm),
                    ("touch it", "touch -c queues/vq", denied),
                    ("watch with it", "mkdir sources/ns && echo 'vq 9' | $C put sources/ns/watches", eacces),
                    ("watch with it among others", "printf 'nq 1\\nvq 2\\n' | $C put sources/ns/watches", eacces),
                    ("add a watch to its source", "echo 'nq 1' | $C put sources/vs/watches", eacces),
                    ("remove its watch", "echo '!vq' | $C put sources/vs/watches", eacces),
                    ("post", "echo 1 | $C put sources/vs/post", eacces),
                    ("post.bin", "printf '\\000\\001\\000\\001\\010\\000\\000\\000' | $C put sources/vs/post.bin", eacces),
                    ("set the id", "echo 99 | $C put sources/vs/id", eacces),
                    ("set the type", "echo 1 | $C put sources/vs/type", eacces),
                    ("take its id", "cat sources/vs/id | $C put sources/ns/id", "errno=EEXIST\n"),
                    ("forge META records", "echo 0 | $C put sources/ns/type", "errno=EINVAL\n"),
                    ("rmdir the source", "rmdir sources/vs", eperm),
                    ("rm -rf the source", "rm -rf sources/vs", denied),
                    ("rename the source", "mv sources/vs sources/x", eperm),
                    ("mkdir over the source", "mkdir sources/vs", "File exists"),
                    ("chmod the source", "chmod 777 sources/vs", eperm),
                    ("chown the source", "chown 65534 sources/vs", eperm),
                    ("chmod its post", "chmod 666 sources/vs/post", eperm),
                    ("mkdir in the source", "mkdir sources/vs/x", denied),
                    ("create in the source", "touch sources/vs/x", denied),
                    ("read a private source", "cat sources/vp/watches", denied),
                    ("list a private source", "ls sources/vp", denied),
                ]
                let results = try attempts(m, as: 65534, expected.map { ($0.0, $0.1) })
                for (label, command, want) in expected {
                    let got = results[label] ?? "(no output)"
                    #expect(got.contains(want), "\(label): `\(command)` gave \(got.debugDescription), want \(want.debugDescription)")
                }
                // The attacker's own source got nothing from the refused watch writes.
                #expect(try m.text("sources/ns/watches") == "")

                let after = try asRoot(m, snapshot)
                #expect(after.stdout == before.stdout, "the victim's objects changed")
                #expect(try m.status("vq")["queued"] == 3)
                // The victim reads exactly the records it was sent (subtype 9 filtered out).
                let read = try asUser(m, victim, "$C read queues/vq 4096 nonblock")
                let want = hex(ABI.record(type: 256, subtype: 1, watchID: 5, payload: u32(7)),
                               ABI.record(type: 256, subtype: 2, watchID: 5, payload: Array("hello".utf8)),
                               ABI.record(type: 256, subtype: 3, watchID: 6, payload: [2]))
                #expect(read.stdout == want + "\n", "\(read)")
                // What wqfs itself refused is in the errors log, with the uid.
                let errors = try m.text("errors")
                #expect(errors.contains("uid=65534 sources/ns/watches 'vq 9\\x0a': EACCES: no read permission on queue 'vq'"), "\(errors)")
                #expect(errors.contains("uid=65534 sources/ns/id"))
            }
        }

        @Test("exhausting memory: sizes, queues, sources, slots, watches, filters, floods hit their limits")
        func exhaustion() throws {
            let options = ["allow_other", "default_size=16", "max_size=64", "max_queues=30", "max_user_queues=10",
                           "max_sources=30", "max_user_sources=10", "max_slots=1000", "max_user_slots=200",
                           "max_watches=8", "max_filters=4"]
            try withMount(options) { m throws in
                let attack = try asUser(m, 65534, """
                    made=0; for i in $(seq 0 14); do touch queues/n$i 2>/dev/null && made=$((made+1)); done; echo "queues=$made"
                    touch queues/n99 2>&1
                    made=0; for i in $(seq 0 14); do mkdir sources/s$i 2>/dev/null && made=$((made+1)); done; echo "sources=$made"
                    echo 100000 | $C put queues/n0.size
                    $C setsize queues/n0 4294967297
                    $C setsize queues/n0 0
                    echo 64 | $C put queues/n0.size
                    echo 56 | $C put queues/n0.size
                    echo 1 | $C put queues/n1.size
                    printf 'type=1\\ntype=2\\ntype=3\\ntype=4\\ntype=5\\n' | $C put queues/n1.filter
                    printf 'n0 1\\nn1 1\\nn2 1\\nn3 1\\nn4 1\\nn5 1\\nn6 1\\nn7 1\\nn8 1\\n' | $C put sources/s0/watches
                    wc -c < sources/s0/watches
                    printf 'n0 1\\nn1 1\\nn2 1\\nn3 1\\nn4 1\\nn5 1\\nn6 1\\nn7 1\\n' | $C put sources/s0/watches
                    echo 'n8 1' | $C put sources/s1/watches
                    """)
                #expect(attack.stdout == """
                    queues=10
                    touch: cannot touch 'queues/n99': No space left on device
                    sources=10
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=ENOSPC
                    ok
                    ok
                    errno=EINVAL
                    errno=EAGAIN
                    0
                    ok
                    errno=EAGAIN

                    """, "\(attack)")
                var errors = try m.text("errors")
                for reason in ["uid 65534 holds its limit of 10 queues", "uid 65534 holds its limit of 10 sources",
                               "size '100000' is outside 1..64", "over the per-user limit of 200",
                               "5 filter entries exceed the limit of 4", "uid 65534 holds 0 watches; 9 more exceed the limit of 8",
                               "uid 65534 holds 8 watches; 1 more exceed the limit of 8"] {
                    #expect(errors.contains(reason), "errors lacks \(reason.debugDescription):\n\(errors)")
                }
                // Others keep their share; only the mount-wide limit stops root.
                let others = try asUser(m, victim, """
                    for i in $(seq 0 9); do touch queues/v$i || exit 1; mkdir sources/v$i || exit 1; done; echo ok
                    """)
                #expect(others.stdout == "ok\n", "\(others)")
                #expect(try asRoot(m, """
                    for i in $(seq 0 9); do touch queues/r$i || exit 1; done; touch queues/r10 2>&1
                    """).stdout == "touch: cannot touch 'queues/r10': No space left on device\n")
                #expect(try m.text("errors").contains("the mount holds its limit of 30 queues"))

                // A post flood into full queues: counted, dropped, no memory growth.
                let before = try residentKB(m)
                let flood = try asUser(m, 65534, """
                    for round in 1 2 3 4; do $C post-seq sources/s0/post.bin 256 0 50000 256 || exit 1; done
                    head -c 1048576 /dev/zero | tr '\\000' x | $C put sources/s0/post
                    """, timeout: 180)
                #expect(flood.stdout == "posted=50000\nposted=50000\nposted=50000\nposted=50000\nerrno=EINVAL\n", "\(flood)")
                let after = try residentKB(m)
                #expect(!rssIsMeaningful || after - before < 8_192, "RSS grew from \(before) kB to \(after) kB over a 200 000-record flood")
                for queue in (0..<8).map({ "n\($0)" }) {
                    let s = try m.status(queue)
                    #expect(s["posted"] == 200_000 && s["queued"] == s["size"] && s["lost"] == 200_000 - (s["size"] ?? 0), "\(queue): \(s)")
                    try expectBalanced(m, queue)
                }

                // An errors flood leaves the log at 128 entries, each bounded.
                let junk = try asUser(m, 65534, """
                    i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "junk$i" | $C put sources/s0/type > /dev/null; done
                    """, timeout: 120)
                #expect(junk.status == 0, "\(junk)")
                errors = try m.text("errors")
                let lines = errors.split(separator: "\n")
                #expect(lines.count == 128)
                #expect(lines.last?.contains("'junk300\\x0a'") == true && lines.first?.contains("'junk173\\x0a'") == true)
                #expect(lines.allSatisfy { $0.utf8.count < 1_024 }, "an errors entry is not bounded")
                #expect(errors.utf8.count < 128 * 1_024)
            }
        }
    }

    @Suite("faults") struct Faults {
        @Test("a reader killed with SIGKILL while blocked in read: nothing left waiting, no record lost")
        func killedReaders() throws {
            try withMount { m throws in
                let outcome = try asRoot(m, """
                    touch queues/q && mkdir sources/s && echo 'q 1' > sources/s/watches || exit 1
                    pids=""
                    for i in 1 2 3 4 5 6 7 8; do $C read queues/q 4096 > /dev/null & pids="$pids $!"; done
                    hw_wait '[ "$(hw_field q waiting)" = 8 ]' || exit 1
                    kill -9 $pids
                    for p in $pids; do wait $p; done
                    echo "waiting=$(hw_field q waiting) readers=$(hw_field q readers)"
                    echo '7 u8=1' > sources/s/post
                    $C read queues/q 4096 nonblock
                    echo "queued=$(hw_field q queued) read=$(hw_field q read)"
                    """)
                #expect(outcome.stdout == "waiting=0 readers=0\n\(hex(ABI.record(type: 256, subtype: 7, watchID: 1, payload: [1])))\nqueued=0 read=1\n",
                        "\(outcome)")
                try expectBalanced(m, "q")
            }
        }

        @Test("interrupted readers consume nothing: every record is read exactly once")
        func interruptedReaders() throws {
            try withMount { m throws in
                // 16 readers whose reads SIGALRM interrupts after 1 s, while 8 records
                // trickle in; then the rest is drained. Each record is 16 bytes: a
                // header and its sequence number.
                let outcome = try asRoot(m, """
                    touch queues/q && mkdir sources/s && echo 'q 1' > sources/s/watches || exit 1
                    pids=""
                    for i in $(seq 1 16); do $C readint queues/q 4096 1 > "$T/r$i" & pids="$pids $!"; done
                    hw_wait '[ "$(hw_field q waiting)" = 16 ]' || exit 1
                    for n in 1 2 3 4 5 6 7 8; do $C post-seq sources/s/post.bin 256 $n 1 1 > /dev/null; sleep 0.05; done
                    for p in $pids; do wait $p; done
                    cat "$T"/r*
                    $C read queues/q 4096 nonblock
                    echo "waiting=$(hw_field q waiting)"
                    """, timeout: 60)
                #expect(outcome.status == 0, "\(outcome)")
                var sequences: [UInt64] = []
                var interrupted = 0
                for line in outcome.lines {
                    if line == "errno=EINTR" { interrupted += 1; continue }
                    if line.hasPrefix("waiting=") || line == "errno=EAGAIN" { continue }
                    let bytes = stride(from: 0, to: line.count, by: 2).compactMap { index -> UInt8? in
                        let start = line.index(line.startIndex, offsetBy: index)
                        return UInt8(line[start..<line.index(start, offsetBy: 2)], radix: 16)
                    }
                    #expect(bytes.count % 16 == 0, "not whole records: \(line)")
                    for offset in stride(from: 0, to: bytes.count - 15, by: 16) {
                        sequences.append(bytes[(offset + 8)..<(offset + 16)].reversed().reduce(0) { $0 << 8 | UInt64($1) })
                    }
                }
                #expect(sequences.sorted() == Array(1...8), "records read: \(sequences)\n\(outcome)")
                #expect(interrupted >= 8, "\(outcome)")
                #expect(outcome.lines.last == "waiting=0")
                try expectBalanced(m, "q")
            }
        }

        @Test("rm of a queue and rmdir of a source while readers wait and posters write")
        func removalUnderLoad() throws {
            try withMount(["default_size=64"]) { m throws in
                let outcome = try asRoot(m, """
                    touch queues/q queues/k && mkdir sources/s && printf 'q 1\\nk 2\\n' > sources/s/watches || exit 1
                    echo type=1 > queues/k.filter   # k keeps only META records: its removal record always fits
                    readers=""
                    for i in 1 2 3; do cat queues/q > "$T/c$i" & readers="$readers $!"; done
                    $C reader queues/q 4096 "$T/never" > "$T/p1" & readers="$readers $!"
                    posters=""
                    for i in 1 2; do
                        ( while [ ! -e "$T/stop" ]; do $C post-seq sources/s/post.bin 256 0 500 25 > /dev/null || break; done ) &
                        posters="$posters $!"
                    done
                    sleep 1
                    rm queues/q || exit 1
                    for p in $readers; do wait $p || echo "reader $p failed"; done
                    echo "readers ended"; tail -n 1 "$T/p1"
                    # Now the other queue: readers wait while the posters' source goes away.
                    readers=""
                    for i in 1 2; do $C reader queues/k 4096 "$T/stop" > "$T/k$i" & readers="$readers $!"; done
                    sleep 0.5
                    rmdir sources/s || exit 1
                    touch "$T/stop"
                    for p in $posters $readers; do wait $p; done
                    echo "removals=$(cat "$T"/k1 "$T"/k2 | grep -c '^removal 2 ')"
                    echo "waiting=$(hw_field k waiting)"
                    # Still serving.
                    touch queues/z && mkdir sources/t && echo 'z 3' > sources/t/watches && echo '1 u8=9' > sources/t/post
                    $C read queues/z 4096 nonblock
                    """, timeout: 90)
                #expect(outcome.stdout == """
                    readers ended
                    eof
                    removals=1
                    waiting=0
                    \(hex(ABI.record(type: 256, subtype: 1, watchID: 3, payload: [9])))

                    """, "\(outcome)")
                try expectBalanced(m, "k")
                try expectBalanced(m, "z")
            }
        }

        @Test("a lazy unmount under load: processes inside keep working, then the server exits 0")
        func lazyUnmountUnderLoad() throws {
            try withMount { m throws in
                let outcome = try asRoot(m, """
                    touch queues/q && mkdir sources/s && echo 'q 1' > sources/s/watches || exit 1
                    cat queues/q > /dev/null & c1=$!
                    cat queues/q > /dev/null & c2=$!
                    ( while :; do $C post-seq sources/s/post.bin 256 0 200 20 > /dev/null || exit 1; done ) & p=$!
                    $C read queues/q 4096 > "$T/late" & r=$!
                    sleep 1
                    cd / && umount -l "$M" || exit 1
                    grep -q " $M fuse" /proc/mounts && echo "still mounted"
                    sleep 0.5
                    kill -0 $p && echo "poster still posting"
                    kill $p; kill -9 $c1 $c2 $r
                    wait
                    echo done
                    """, timeout: 60)
                #expect(outcome.stdout == "poster still posting\ndone\n", "\(outcome)")
                #expect(serverExit(m, within: 15) == 0, "the server did not exit cleanly:\n\(m.serverLog)")
                #expect(!Mount.isMounted(m.path))
            }
        }

        @Test("SIGTERM with blocked readers: they read end of file, the server exits 0")
        func sigtermWithBlockedReaders() throws {
            try withMount { m throws in
                // The script waits for its readers, so it runs on its own thread while
                // this one stops the server. (A child that outlives its script keeps
                // Foundation's Process from seeing the script end.)
                let script = helpers + """
                    touch queues/q || exit 1
                    pids=""
                    for i in 1 2 3 4; do $C read queues/q 4096 > "$T/r$i" & pids="$pids $!"; done
                    $C poll queues/q 30000 > /dev/null & pids="$pids $!"
                    for p in $pids; do wait $p; done
                    cat "$T"/r1 "$T"/r2 "$T"/r3 "$T"/r4
                    """
                let finished = ScriptResult()
                let (path, environment) = (m.path, m.environment)
                let thread = Thread {
                    finished.set(try? run("/bin/sh", ["-c", script], directory: path, environment: environment, timeout: 60))
                }
                thread.start()
                let deadline = Date(timeIntervalSinceNow: 15)
                while (try? m.status("q"))?["waiting"] != 4 && Date() < deadline { usleep(20_000) }
                #expect(try m.status("q")["waiting"] == 4)
                #expect(m.stop() == 0, "the server did not exit 0:\n\(m.serverLog)")
                let outcome = finished.wait(seconds: 30)
                #expect(outcome?.stdout == "eof\neof\neof\neof\n", "\(String(describing: outcome))")
            }
        }

        @Test("1 000 open/close cycles (reads, polls, control files): RSS stays flat, nothing left waiting")
        func openCloseCycles() throws {
            try withMount { m throws in
                let setup = try asRoot(m, "touch queues/q && mkdir sources/s && echo 'q 1' > sources/s/watches")
                #expect(setup.status == 0)
                let cycles = """
                    i=0
                    while [ $i -lt $N ]; do
                        i=$((i+1))
                        exec 3< queues/q; exec 3<&-
                        exec 4< queues/q.status; read -r line <&4; exec 4<&-
                        echo 'type=user subtypes=1' > queues/q.filter
                        echo "1 u8=$((i % 256))" > sources/s/post
                        $C poll queues/q 1 > /dev/null
                        $C read queues/q 4096 nonblock > /dev/null
                        $C poll queues/q 1 > /dev/null
                    done
                    echo "waiting=$(hw_field q waiting) readers=$(hw_field q readers)"
                    """
                _ = try asRoot(m, "N=200\n" + cycles, timeout: 120)
                let warm = try residentKB(m)
                let first = try asRoot(m, "N=1000\n" + cycles, timeout: 300)
                let middle = try residentKB(m)
                let second = try asRoot(m, "N=1000\n" + cycles, timeout: 300)
                let end = try residentKB(m)
                #expect(first.stdout == "waiting=0 readers=0\n" && second.stdout == first.stdout, "\(first)\n\(second)")
                #expect(!rssIsMeaningful || (end - middle < 1_024 && end - warm < 4_096),
                        "RSS: \(warm) kB after warm-up, \(middle) kB after 1 000 cycles, \(end) kB after 2 000")
                try expectBalanced(m, "q")
                print("wqfs server RSS over open/close cycles: \(warm) → \(middle) → \(end) kB")
            }
        }
    }
}
