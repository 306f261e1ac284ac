import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// DESIGN §6, issue 10: the machine's mounts, processes and devices as records. Each
// test makes the real event happen (a mount, a process, a uevent) and reads the
// records through the C client, which decodes them with include/wqfs/records.h.

/// The lines `$C records` printed, split into words.
private func records(_ out: String) -> [[String]] {
    out.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
}

/// Whether the mount's README says `name` runs; the reason when it does not.
private func unavailable(_ m: Mount, _ name: String) throws -> String? {
    let readme = try m.text("README")
    guard let line = readme.split(separator: "\n").first(where: { $0.hasPrefix("\(name): ") }) else { return "not listed" }
    return line.contains(": ready") ? nil : String(line)
}

/// Says on standard error that a test does not apply here, and why (Swift Testing
/// has no skip at run time; the test then passes having checked nothing).
private func skip(_ source: String, _ reason: String) {
    FileHandle.standardError.write(Data("skipped: the \(source) source is unavailable on this machine: \(reason)\n".utf8))
}

/// The `key value` lines of a system source's status.
private func status(_ m: Mount, _ name: String) throws -> [String: String] {
    var result: [String: String] = [:]
    for line in try m.text("sources/\(name)/status").split(separator: "\n") {
        let parts = line.split(separator: " ", maxSplits: 1)
        if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
    }
    return result
}

extension MountTests {
    @Suite("system sources") struct SystemSourceTests {
        static let all = ["sources=mounts:processes:devices"]

        @Test("system sources: reserved names, read-only id and type, no post files, EPERM to remove, rename or retype")
        func layoutAndRefusals() throws {
            try withMount(Self.all + ["allow_other"]) { m throws in
                #expect(try m.out("ls sources") == "devices\nmounts\nprocesses\n")
                #expect(try m.out("cat sources/mounts/type sources/processes/type sources/devices/type") == "2\n64\n65\n")
                #expect(try m.out("ls sources/mounts; ls sources/processes") == "id\nstatus\ntable\ntype\nwatches\nid\nstatus\ntype\nwatches\n")
                #expect(try m.out("stat -c '%a %U' sources/mounts sources/mounts/id sources/mounts/type sources/mounts/status sources/mounts/watches")
                        == "755 root\n444 root\n444 root\n444 root\n666 root\n")
                for (command, message) in [
                    ("rmdir sources/mounts", "Operation not permitted"),
                    ("mv sources/devices sources/d2", "Operation not permitted"),
                    ("mkdir sources/mounts", "File exists"),
                    ("echo 0 > sources/devices/post", "Operation not permitted"),
                    ("echo x > sources/mounts/status", "Permission denied"),
                ] {
                    let outcome = try m.sh(command)
                    #expect(outcome.status != 0 && outcome.stderr.contains(message), "\(command): \(outcome)")
                }
                #expect(try m.out("echo 9 | $C put sources/processes/id; echo 1 | $C put sources/processes/type") == "errno=EPERM\nerrno=EPERM\n")
                #expect(try m.text("errors").contains("sources/processes/id '9\\x0a': EPERM: 'processes' is a system source"))
                // nobody can neither post nor remove, rename or retype.
                let nobody = try m.shAsNobody("""
                    rmdir sources/processes 2>&1; mv sources/processes sources/p 2>&1
                    echo 1 | $C put sources/processes/type; echo 1 | $C put sources/processes/post
                    """)
                #expect(nobody.stdout.components(separatedBy: "Operation not permitted").count == 3, "\(nobody)")
                #expect(nobody.stdout.hasSuffix("errno=EACCES\nerrno=ENOENT\n"), "\(nobody)")
                #expect(try m.out("cat sources/processes/type") == "64\n")
            }
            // Without them the names stay reserved.
            try withMount(["sources=none"]) { m throws in
                #expect(try m.out("ls sources") == "")
                #expect(try m.sh("mkdir sources/devices").stderr.contains("File exists"))
                #expect(try m.text("README").contains("devices: off"))
            }
        }

        @Test("-o sources= picks the sources; an unknown name stops the mount with a reason")
        func choosingSources() throws {
            try withMount(["sources=devices,mounts"]) { m throws in
                #expect(try m.out("ls sources") == "devices\nmounts\n")
                #expect(try m.text("README").contains("processes: off"))
            }
            let bad = try run(try Products.path("wqfs"), ["/nonexistent", "-o", "sources=disks"], timeout: 10)
            #expect(bad.status == 1 && bad.stderr.contains("'disks' is none of mounts, processes, devices"), "\(bad)")
        }

        @Test("the event thread runs normal by default, SCHED_FIFO with event_priority=N; a bad priority stops the mount")
        func eventThreadScheduling() throws {
            /// What chrt says of the server's thread named wqfs-events.
            func policy(_ m: Mount) throws -> String {
                try m.out("for t in /proc/\(m.serverPID)/task/*; do if [ \"$(cat $t/comm)\" = wqfs-events ]; then chrt -p ${t##*/}; fi; done")
            }
            try withMount(Self.all) { m throws in
                let said = try policy(m)
                #expect(said.contains("scheduling policy: SCHED_OTHER\n"), "\(said)")
                #expect(try m.text("README").contains("event thread: normal scheduling (event_priority=0)\n"))
            }
            try withMount(Self.all + ["event_priority=7"]) { m throws in
                let said = try policy(m)
                #expect(said.contains("scheduling policy: SCHED_FIFO\n") && said.contains("scheduling priority: 7\n"), "\(said)")
                #expect(try m.text("README").contains("event thread: SCHED_FIFO priority 7\n"))
                #expect(m.serverLog.contains("system source event thread: SCHED_FIFO priority 7"))
            }
            // Without CAP_SYS_NICE the thread stays normal and the README says why.
            try withMount(Self.all + ["event_priority=5"], launcher: ["/usr/bin/setpriv", "--bounding-set", "-sys_nice"]) { m throws in
                let said = try policy(m)
                #expect(said.contains("scheduling policy: SCHED_OTHER\n"), "\(said)")
                #expect(try m.text("README").contains("event thread: normal scheduling (SCHED_FIFO: Operation not permitted (EPERM))\n"))
            }
            for (value, reason) in [("event_priority=100", "event_priority '100' is outside 0..99"), ("event_priority", "needs a value")] {
                let bad = try run(try Products.path("wqfs"), ["/nonexistent", "-o", value], timeout: 10)
                #expect(bad.status == 1 && bad.stderr.contains(reason), "\(bad)")
            }
        }

        @Test("a mechanism is open only while watched: idle, watching, idle again")
        func openOnlyWhileWatched() throws {
            try withMount(Self.all) { m throws in
                for name in ["mounts", "processes", "devices"] where try unavailable(m, name) == nil {
                    #expect(try status(m, name)["state"] == "idle", "\(name)")
                    _ = try m.out("watch q\(name) \(name) 1")
                    #expect(try status(m, name)["state"] == "watching", "\(name)")
                    _ = try m.out("echo '!q\(name)' > sources/\(name)/watches")
                    _ = try m.out("waitfor 'grep -q \"state idle\" sources/\(name)/status'")
                }
            }
        }

        @Test("mounts: mount, bind, read-only remount, move and unmount give their records, ids the table names, in order")
        func mounts() throws {
            try withMount(Self.all) { m throws in
                if let reason = try unavailable(m, "mounts") { skip("mounts", reason); return }
                // Each step waits for its records, so the two mechanisms behind the
                // source (fanotify, mountinfo) cannot be read out of order.
                let out = try m.out("""
                    watch q mounts 4
                    n() { waitfor "[ \\$(grep '^queued ' queues/q.status | cut -d' ' -f2) -ge $1 ]"; }
                    mkdir -p $T/a $T/b $T/c
                    mount -t tmpfs wqfs-test $T/a && n 1
                    mount --bind $T/a $T/b && n 2
                    mount -o remount,bind,ro $T/b && n 3
                    mount --move $T/b $T/c && n 5
                    umount $T/c && n 6
                    umount $T/a && n 7
                    $C records queues/q
                    echo --
                    cat sources/mounts/table
                    """, timeout: 60)
                let parts = out.components(separatedBy: "--\n")
                try #require(parts.count == 2, "\(out)")
                let got = records(parts[0])
                try #require(got.count == 7, "\(out)")
                #expect(got.map { $0[1] } == ["0", "0", "3", "5", "6", "1", "1"], "\(got)")
                #expect(got.allSatisfy { $0[0] == "mount" })
                // The table names every id, the gone mounts included.
                var table: [String: [String]] = [:]
                for line in parts[1].split(separator: "\n") {
                    let fields = line.split(separator: " ").map(String.init)
                    table[fields[0]] = fields
                }
                let tmpfs = got[0][4], bind = got[1][4]
                #expect(table[tmpfs]?[2] == "\(m.scratch)/a" && table[tmpfs]?[3] == "tmpfs" && table[tmpfs]?[4] == "wqfs-test", "\(table[tmpfs] ?? [])")
                #expect(table[tmpfs]?.last == "gone" && table[bind]?.last == "gone")
                #expect(got[0][3] == table[tmpfs]?[1], "new mount on its parent")
                // Read-only: on the bind mount itself, flag is-now-read-only.
                #expect(got[2][3] == bind && got[2][4] == "0" && (UInt32(got[2][2].dropFirst(2), radix: 16) ?? 0) & 0x20000 != 0, "\(got[2])")
                // The move: from and to the parent, the bind mount as auxiliary.
                #expect(got[3][4] == bind && got[4][4] == bind)
                #expect(got[5][4] == bind && got[6][4] == tmpfs, "unmounts in order")
                for record in got where record[1] != "3" {
                    #expect(table[record[3]] != nil, "parent \(record[3]) named by the table")
                }
            }
        }

        @Test("processes: a child that forks, execs and exits with 3 gives fork, exec and exit with its pids and code")
        func processes() throws {
            try withMount(Self.all) { m throws in
                if let reason = try unavailable(m, "processes") { skip("processes", reason); return }
                let out = try m.out("""
                    watch q processes 2; echo 16384 > queues/q.size 2>/dev/null || echo 4096 > queues/q.size
                    sh -c 'echo $$ > $T/pid; exec sh -c "exit 3"'; echo "status $?"
                    waitfor "$C records queues/q > $T/r; cat $T/r >> $T/all; grep -q \\"^process 8 0x0 $(cat $T/pid) \\" $T/all"
                    echo "pid $(cat $T/pid) shell $$"
                    cat $T/all
                    """, timeout: 60)
                let lines = out.split(separator: "\n").map(String.init)
                #expect(lines.first == "status 3")
                let ids = try #require(lines.first { $0.hasPrefix("pid ") }?.split(separator: " "))
                let pid = String(ids[1]), shell = String(ids[3])
                let mine = records(out).filter { $0.count > 4 && $0[0] == "process" && $0[3] == pid }
                let kinds = mine.map { $0[1] }
                let fork = try #require(mine.first { $0[1] == "0" }, "\(mine)")
                #expect(fork[4] == pid && fork[5] == shell, "fork: the child's tgid and its parent, the shell: \(fork)")
                #expect(kinds.contains("1"), "exec: \(kinds)")
                let exit = try #require(mine.last { $0[1] == "8" })
                #expect(exit[2] == "0x0" && exit[5] == "3" && exit[6] == "0", "exit code 3, no signal: \(exit)")
                #expect(kinds.firstIndex(of: "0")! < kinds.firstIndex(of: "1")! && kinds.firstIndex(of: "1")! < kinds.lastIndex(of: "8")!,
                        "fork, then exec, then exit: \(kinds)")
            }
        }

        @Test("processes: a filter for exits subscribes the kernel to exits only; nobody may watch and sees them too")
        func processFilter() throws {
            try withMount(Self.all + ["allow_other"]) { m throws in
                if let reason = try unavailable(m, "processes") { skip("processes", reason); return }
                _ = try m.out("touch queues/q && echo 'type=64 subtypes=8' > queues/q.filter && echo 'q 1' > sources/processes/watches")
                #expect(try status(m, "processes")["kinds"] == "0x80000000")
                let out = try m.out("""
                    sh -c 'exit 5'; sleep 0.1; sh -c 'exit 5'
                    waitfor "$C records queues/q >> $T/all; grep -q ' 5 0 ' $T/all"
                    cat $T/all
                    """)
                let got = records(out).filter { $0.first == "process" }
                #expect(!got.isEmpty && got.allSatisfy { $0[1] == "8" }, "exits only: \(got)")
                // Widening the filter widens the subscription.
                _ = try m.out("echo 'type=64 subtypes=0,8' > queues/q.filter")
                _ = try m.out("waitfor 'grep -q \"kinds 0x80000001\" sources/processes/status'")
                // Any user may listen to the proc connector (6.6+), so nobody may watch.
                let nobody = try m.shAsNobody("""
                    touch queues/nq && echo 'nq 1' > sources/processes/watches && sh -c 'exit 7'
                    waitfor "$C records queues/nq >> $T/nobody; grep -q ' 7 0 ' $T/nobody" && echo seen
                    """)
                #expect(nobody.stdout.contains("seen"), "\(nobody)")
            }
        }

        @Test("devices: a change uevent gives a change record for mem/null; user-space senders are ignored")
        func devices() throws {
            try withMount(Self.all) { m throws in
                if let reason = try unavailable(m, "devices") { skip("devices", reason); return }
                let out = try m.out("""
                    watch q devices 3
                    $C fake-uevent
                    echo change > /sys/class/mem/null/uevent
                    waitfor "$C records queues/q >> $T/all; grep -q '^device ' $T/all"
                    cat $T/all; echo --; cat sources/devices/table
                    """)
                let parts = out.components(separatedBy: "--\n")
                try #require(parts.count == 2, "\(out)")
                let got = records(parts[0]).filter { $0.first == "device" }
                try #require(got.count == 1, "only the kernel's event, not the fake one: \(out)")
                let record = got[0]
                #expect(record[1] == "2" && record[4] == "1" && record[5] == "3" && record[6] == "mem"
                        && record[7] == "/devices/virtual/mem/null", "\(record)")
                #expect(parts[1].contains("seqnum \(record[3]) change /devices/virtual/mem/null (mem)\n  ACTION=change\n"), "\(parts[1])")
                #expect(try status(m, "devices")["ignored"] == "1")
                // Filters work on the type: subtype 2 (change) kept, 0 (add) dropped.
                _ = try m.out("echo 'type=65 subtypes=0' > queues/q.filter; echo change > /sys/class/mem/null/uevent")
                _ = try m.out("waitfor '[ $(grep \"^filtered \" queues/q.status | cut -d\" \" -f2) -ge 1 ]'")
            }
        }

        @Test("mounts overflow: fanotify drops events; a loss record, then the table read again posts every new mount")
        func mountsOverflow() throws {
            try withMount(Self.all) { m throws in
                if let reason = try unavailable(m, "mounts") { skip("mounts", reason); return }
                guard getuid() == 0 else { skip("mounts overflow", "needs root to shrink fs.fanotify.max_queued_events"); return }
                // The queue limit is taken when the group is made: shrunk only while
                // the watch opens the mechanism, then restored for everyone else.
                let out = try m.out("""
                    limit=$(cat /proc/sys/fs/fanotify/max_queued_events)
                    echo 2 > /proc/sys/fs/fanotify/max_queued_events
                    watch q mounts 1; echo 1024 > queues/q.size
                    echo $limit > /proc/sys/fs/fanotify/max_queued_events
                    grep -q 'via fanotify' sources/mounts/status || { echo no-fanotify; exit 0; }
                    kill -STOP \(m.serverPID)
                    for i in 1 2 3 4 5 6; do mkdir -p $T/o$i && mount -t tmpfs wqfs-overflow $T/o$i; done
                    kill -CONT \(m.serverPID)
                    waitfor "grep -q '^resyncs 1' sources/mounts/status"
                    $C records queues/q
                    echo --
                    grep ' wqfs-overflow ' sources/mounts/table
                    echo --
                    grep '^lost ' sources/mounts/status
                    for i in 1 2 3 4 5 6; do umount $T/o$i; done
                    """, timeout: 60)
                if out.hasPrefix("no-fanotify") { skip("mounts overflow", "fanotify mount events are not available"); return }
                let parts = out.components(separatedBy: "--\n")
                try #require(parts.count == 3, "\(out)")
                let got = records(parts[0])
                #expect(parts[2] == "lost 1\n", "\(parts[2])")
                let lossAt = try #require(got.firstIndex { $0 == ["loss"] }, "a loss record: \(out)")
                let ids = parts[1].split(separator: "\n").map { String($0.split(separator: " ")[0]) }
                #expect(ids.count == 6, "\(parts[1])")
                // After the loss record, the resync names each of the six mounts new.
                let resynced = Set(got[(lossAt + 1)...].filter { $0.first == "mount" && $0[1] == "0" }.map { $0[4] })
                for id in ids { #expect(resynced.contains(id), "mount \(id) posted after the loss: \(out)") }
            }
        }

        @Test("overflow: events the kernel drops (a tiny netlink buffer, a stopped server) become a loss record and a count")
        func overflow() throws {
            try withMount(Self.all + ["source_buffer=1"]) { m throws in
                if let reason = try unavailable(m, "devices") { skip("devices", reason); return }
                let out = try m.out("""
                    watch q devices 3; echo 4096 > queues/q.size
                    kill -STOP \(m.serverPID)
                    for i in $(seq 40); do echo change > /sys/class/mem/null/uevent; done
                    kill -CONT \(m.serverPID)
                    waitfor "grep -q '^lost [1-9]' sources/devices/status"
                    echo change > /sys/class/mem/null/uevent
                    waitfor "$C records queues/q >> $T/all; grep -q '^loss' $T/all && tail -n 1 $T/all | grep -q '^device'"
                    cat $T/all
                    """, timeout: 60)
                let got = records(out)
                #expect(got.contains { $0 == ["loss"] }, "\(out)")
                #expect(got.allSatisfy { $0 == ["loss"] || ($0.first == "device" && $0[1] == "2") }, "\(out)")
                #expect(try m.status("q")["lost"] ?? 0 >= 1)
            }
        }
    }
}
