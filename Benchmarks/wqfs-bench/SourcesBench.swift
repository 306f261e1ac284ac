// Part 5: the system sources (sources/mounts, sources/processes, sources/devices).
//
// Latency, event → record read, through the mount and through the floor: the same
// kernel mechanism read directly by Benchmarks/sources-floor/floor.c. Both are
// driven by the same trigger code in this process, the clock stamped just before
// the triggering call; the wqfs side stamps when a reader thread's read() of the
// queue returns, the floor stamps when its own read/recv returns and sends the
// stamp here through a pipe (CLOCK_MONOTONIC is one clock for every process).
// Only one of the two listens at a time: the wqfs watch is removed and the floor
// process ended between batches, so neither pays for the other's wake-ups.
//
// Idle cost: the server's CPU ticks over a quiet window, with every source
// watched and a reader blocked on each queue, and with no watches.
#if canImport(Glibc)
import Glibc
#endif
import CKeyObserver
import Synchronization

enum SourceKind: String, CaseIterable {
    case mounts, processes, devices, keys

    /// The record type the source posts (include/wqfs/records.h; keys: the
    /// kernel's WATCH_TYPE_KEY_NOTIFY).
    var type: UInt32 {
        switch self {
        case .keys: 1
        case .mounts: 2
        case .processes: 64
        case .devices: 65
        }
    }

    /// What the latency row says is timed.
    var trigger: String {
        switch self {
        case .mounts: "mount(2) of a tmpfs → NEW_MOUNT record"
        case .processes: "fork(2) → FORK record of the child"
        case .devices: "write \"change\" to /sys/class/mem/null/uevent → CHANGE record"
        case .keys: "keyctl(KEYCTL_LINK) of a key into the watched keyring → LINKED record"
        }
    }
}

/// The keys row's keyrings: `ring` is watched, `key` is linked into it by each round
/// (the kernel posts LINKED on the keyring even when the key is already there, and
/// so does wqfs). Both are made in a new anonymous session keyring of this process
/// (KEYCTL_JOIN_SESSION_KEYRING), so they go with it whatever way the bench ends;
/// the normal end unlinks them too.
struct BenchKeys {
    let session: Int32, ring: Int32, key: Int32

    static func make() -> BenchKeys {
        let session = Int32(truncatingIfNeeded: wq_keyctl(1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0, 0, 0, 0))
        if session <= 0 { fail("KEYCTL_JOIN_SESSION_KEYRING: \(String(cString: strerror(errno)))") }
        // keyctl(1) for the makes: add_key(2) is variadic-free but not in Glibc's module.
        func made(_ command: String) -> Int32 {
            guard let serial = Int32(shellOutput(command).trimmingCharacters(in: " \n")), serial > 0 else {
                fail("\(command) gave no serial (install keyutils)")
            }
            return serial
        }
        let ring = made("keyctl newring wqfs-bench-ring @s")
        let key = made("keyctl add user wqfs-bench-key x @s")
        return BenchKeys(session: session, ring: ring, key: key)
    }

    func remove() {
        _ = wq_keyctl(9 /* KEYCTL_UNLINK */, UInt(UInt32(bitPattern: key)), UInt(UInt32(bitPattern: ring)), 0, 0)
        _ = wq_keyctl(9, UInt(UInt32(bitPattern: key)), UInt(UInt32(bitPattern: session)), 0, 0)
        _ = wq_keyctl(9, UInt(UInt32(bitPattern: ring)), UInt(UInt32(bitPattern: session)), 0, 0)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let drop = Set(set)
        return String(self.drop { drop.contains($0) }.reversed().drop { drop.contains($0) }.reversed())
    }
}

/// What one record (or floor line) means for the round under way.
enum RoundEvent {
    /// The event the round times (its id: mount id, child pid, uevent seqnum).
    case timed(UInt64)
    /// The event after which the source is quiet again (unmount, the child's exit);
    /// for devices the timed event is also the last.
    case final(UInt64)
}

/// Triggers one source's events, the same calls for wqfs and for the floor: from
/// this process, or for processes from the small `floor forker` process when one
/// is given.
final class SourceTrigger: @unchecked Sendable {
    let kind: SourceKind
    /// The tmpfs mount point (mounts).
    let directory: String
    /// The keyrings (keys).
    let keys: BenchKeys?
    /// processes: the process that forks on command, or nil for this one.
    let forker: SourceFloor?
    private var child: pid_t = 0
    private var ueventFD: Int32 = -1
    /// The forker's stamp of the last round, taken just before its fork.
    private var forkerStart: UInt64?
    /// The process whose children a processes round times.
    var parent: pid_t { forker?.pid ?? getpid() }

    init(kind: SourceKind, directory: String, keys: BenchKeys?, forker: SourceFloor? = nil) {
        self.kind = kind
        self.directory = directory
        self.keys = keys
        self.forker = kind == .processes ? forker : nil
    }

    /// The start of the round: `stamped` (taken before `fire`), or the forker's own
    /// stamp before its fork, known once `undo` has run.
    func start(stamped: UInt64) -> UInt64 { forkerStart ?? stamped }

    /// The source's directory in the mount.
    var sourcePath: String { kind == .keys ? "keys/\(keys!.ring)" : "sources/\(kind.rawValue)" }

    /// Everything that must not be timed (opening the uevent file).
    func prepare() {
        if kind == .devices { ueventFD = openOrFail("/sys/class/mem/null/uevent", O_WRONLY) }
        if let forker { _ = SourcesBench.waitUntilProcessBlocked(forker.pid) }
    }

    /// The triggering call itself, right after the start stamp.
    @inline(__always)
    func fire() {
        switch kind {
        case .mounts:
            if mount("wqfs-bench", directory, "tmpfs", 0, nil) != 0 { fail("mount tmpfs on \(directory): \(String(cString: strerror(errno)))") }
        case .processes:
            if let forker {
                if write(forker.input, "f", 1) != 1 { fail("forker: \(String(cString: strerror(errno)))") }
                return
            }
            let pid = fork()
            if pid == 0 { _exit(0) }
            if pid < 0 { fail("fork: \(String(cString: strerror(errno)))") }
            child = pid
        case .devices:
            if write(ueventFD, "change", 6) != 6 { fail("write change to uevent: \(String(cString: strerror(errno)))") }
        case .keys:
            if wq_keyctl(8 /* KEYCTL_LINK */, UInt(UInt32(bitPattern: keys!.key)), UInt(UInt32(bitPattern: keys!.ring)), 0, 0) != 0 {
                fail("KEYCTL_LINK: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// After the timed event was read: undo what `fire` did, so the source's last
    /// event of the round follows (unmount, the child's exit). Returns the id the
    /// timed event must have carried, where this process knows it (the child's pid).
    func undo() -> UInt64? {
        switch kind {
        case .mounts:
            if umount2(directory, 0) != 0 { fail("umount \(directory): \(String(cString: strerror(errno)))") }
            return nil
        case .processes:
            if let forker {
                // Read only now, so the forker's line woke nobody during the round.
                let fields = forker.lines.next()?.split(separator: " ") ?? []
                guard fields.count == 3, fields[0] == "S", let pid = UInt64(fields[1]), let ns = UInt64(fields[2]) else {
                    fail("forker said \(fields.joined(separator: " "))")
                }
                forkerStart = ns
                return pid
            }
            _ = waitFor(child)
            return UInt64(child)
        case .devices:
            close(ueventFD)
            ueventFD = -1
            return nil
        case .keys:
            return UInt64(UInt32(bitPattern: keys!.key))
        }
    }

    /// The meaning of one wqfs record for this source, or nil (other processes'
    /// forks, other devices, loss records).
    func classify(_ record: UnsafeRawBufferPointer) -> RoundEvent? {
        guard record.count >= (kind == .keys ? 16 : 24) else { return nil }
        let header = record.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        guard header & 0xff_ffff == kind.type else { return nil }
        let subtype = header >> 24
        func u32(_ at: Int) -> UInt64 { UInt64(record.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
        func u64(_ at: Int) -> UInt64 { record.loadUnaligned(fromByteOffset: at, as: UInt64.self) }
        switch kind {
        case .mounts:
            if subtype == 0 { return .timed(u64(16)) }
            if subtype == 1 { return .final(u64(16)) }
        case .processes:
            // Only `parent` forks children here; its forks and exits name it as the
            // parent (fork: parent_tgid at 28; exit: at 36), except an exit the
            // kernel reports after the parent reaped the child: its parent ids are
            // 0 then (the reader counts those only for its own children). A new
            // thread of this process (the reader) is a fork with this parent too,
            // told apart by pid ≠ tgid.
            guard u32(16) == u32(20) else { return nil }
            if subtype == 0 && record.count >= 32 && u32(28) == UInt64(parent) { return .timed(u32(16)) }
            if subtype == 8 && record.count >= 40 && (u32(36) == UInt64(parent) || u32(36) == 0) { return .final(u32(16)) }
        case .devices:
            guard subtype == 2, record.count >= 40 else { return nil }
            let subsystem = String(decoding: record[24..<40].prefix { $0 != 0 }, as: UTF8.self)
            let devpath = String(decoding: record[40...].prefix { $0 != 0 }, as: UTF8.self)
            if subsystem == "mem" && devpath == "/devices/virtual/mem/null" { return .timed(u64(8)) }
        case .keys:
            // LINKED (subtype 2) on the watched keyring, aux the key linked.
            if subtype == 2 && u32(8) == UInt64(UInt32(bitPattern: keys!.ring)) { return .timed(u32(12)) }
        }
        return nil
    }

    /// The meaning of one floor line ("K ID NS"), with its stamp.
    func classify(line: Substring) -> (RoundEvent, UInt64)? {
        let fields = line.split(separator: " ")
        guard fields.count == 3, let id = UInt64(fields[1]), let ns = UInt64(fields[2]) else { return nil }
        switch fields[0] {
        case "A", "F", "C", "L": return (.timed(id), ns)
        case "D", "X": return (.final(id), ns)
        default: return nil
        }
    }

    /// Whether a round ends with its timed event. Devices have one event per round.
    /// Processes too: the child's exit follows, when the forker has already reaped
    /// it, and its record is only counted.
    var timedIsFinal: Bool { kind != .mounts }
}

/// Lines from a pipe, read as they come (the floor writes each line whole).
final class LineReader {
    let fd: Int32
    private var pending = [UInt8]()
    private var chunk = [UInt8](repeating: 0, count: 4096)

    init(fd: Int32) { self.fd = fd }

    func next() -> Substring? {
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return Substring(line)
            }
            // A floor that never reports ends the run with a message, not a hang.
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 10_000)
            if ready < 0 && errno == EINTR { continue }
            if ready == 0 { fail("sources-floor: no line in 10 s") }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            pending += chunk[..<n]
        }
    }
}

/// A floor process for one batch: started, subscribed, ended by SIGTERM.
final class SourceFloor {
    let pid: pid_t
    let lines: LineReader
    /// The write end of its stdin (`forker`), or -1.
    let input: Int32
    private var slot: Int?

    /// `mode` is the floor's mechanism argument: the source's name, or
    /// `mounts-rescan` (the floor plus the table reads wqfs makes per event). The
    /// keys floor is this executable (`--keys-floor RING KEY`, KeysFloor.swift).
    /// `queue`: a wqfs queue file for `floor queue`, which reads it in place of the
    /// mechanism. `parent`: the process whose children the processes floor reports.
    /// `mode` `forker` is no floor but the processes trigger, fed through `input`.
    init(binary: String, kind: SourceKind, mode: String? = nil, keys: BenchKeys? = nil, queue: String? = nil,
         parent: pid_t = getpid()) {
        var fds: [Int32] = [0, 0], commands: [Int32] = [-1, -1]
        if pipe(&fds) != 0 || (mode == "forker" && pipe(&commands) != 0) { fail("pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        if commands[0] >= 0 {
            posix_spawn_file_actions_adddup2(&actions, commands[0], 0)
            posix_spawn_file_actions_addclose(&actions, commands[0])
            posix_spawn_file_actions_addclose(&actions, commands[1])
        }
        let argv = kind == .keys ? [selfExecutable(), "--keys-floor", "\(keys!.ring)", "\(keys!.key)"]
            : [binary, mode ?? kind.rawValue, "\(parent)"] + (queue.map { [$0] } ?? [])
        let binary = argv[0]
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, binary, &actions, nil, cArgs, environ)
        if rc != 0 { fail("cannot run \(binary): \(String(cString: strerror(rc)))") }
        close(fds[1])
        if commands[0] >= 0 { close(commands[0]) }
        input = commands[1]
        self.pid = pid
        // Registered so that a failure or a signal ends it too.
        slot = Cleanup.register(process: pid)
        lines = LineReader(fd: fds[0])
        guard lines.next() == "ready" else { fail("sources-floor \(kind.rawValue) did not start (its error is above)") }
    }

    func stop() {
        guard let slot else { return }
        stopServer(pid: pid, mountpoint: "")
        Cleanup.unregister(slot)
        self.slot = nil
        close(lines.fd)
        if input >= 0 { close(input) }
    }
}

/// What the wqfs reader thread and the trigger share for a batch.
final class SourceRounds: @unchecked Sendable {
    let rounds: Int
    let ends: UnsafeMutablePointer<UInt64>
    let ids: UnsafeMutablePointer<UInt64>
    let timed = Semaphore()
    let final = Semaphore()
    var tid: pid_t = 0
    /// What the reader saw last, for the message when a round never ends.
    var seen = [String]()
    /// Final events of this batch's timed ids read that did not end a round
    /// (processes: the children's exits).
    let extraFinals = Atomic<Int>(0)

    init(_ rounds: Int) {
        self.rounds = rounds
        ends = .allocate(capacity: rounds)
        ids = .allocate(capacity: rounds)
        ends.initialize(repeating: 0, count: rounds)
        ids.initialize(repeating: 0, count: rounds)
    }

    deinit {
        ends.deallocate()
        ids.deallocate()
    }
}

/// The idle readers' thread ids and the flag that ends them.
final class IdleReaders: @unchecked Sendable {
    let stop = Atomic<Bool>(false)
    var tids: [pid_t]

    init(_ count: Int) { tids = Array(repeating: 0, count: count) }
}

/// This executable's path (the keys floor is this program).
func selfExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, 4095)
    guard n > 0 else { fail("cannot find this executable") }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The scheduler state of a process's main thread ('S' when asleep in a call).
func processState(_ pid: pid_t) -> UInt8 {
    guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return 0 }
    let after = text[text.index(after: close)...].drop { $0 == " " }
    return after.utf8.first ?? 0
}

/// utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15).
func cpuTicks(_ pid: pid_t) -> Int {
    guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return -1 }
    // After "(comm) " field 3 (the state) comes first: utime and stime are the 12th and 13th.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return -1 }
    return user + system
}

enum SourcesBench {
    /// How long the sources' part runs.
    struct Plan {
        var reps: Int
        var rounds: Int // per repetition, source and system
        var fuseRounds: Int // C floor post.bin round trips per repetition
        var idleSeconds: Double
        var describeCalls = 200_000
        var describeRounds = 5
    }

    struct Latencies {
        var wqfs = [UInt64]()
        var floor = [UInt64]()
        /// mounts only: the floor plus two readings of the table per event.
        var rescan = [UInt64]()
        /// wqfs with its queue read by `floor queue` (not for keys).
        var separate = [UInt64]()
        /// devices and processes: cfloor's C relay of the same mechanism, its queue
        /// read by `floor queue`.
        var relay = [UInt64]()
        /// processes only: wqfs and the floor with this large process forking
        /// instead of the small forker.
        var selfFork = [UInt64](), selfForkFloor = [UInt64]()
        var unverified = 0
        /// Kernel events the wqfs mechanism read during the wqfs batches.
        var events = 0
        /// processes: exit records of the children read (by the next round's start).
        var exits = 0
    }

    /// Settles between rounds: the wqfs mounts source reads mountinfo again after
    /// each event (and on its POLLPRI), which must be over before the next round
    /// starts, and the floor gets the same pause so both start from the same state.
    static let settleMicroseconds: UInt32 = 1000

    /// One batch through the mount: watch the source with `queue`, read it on a
    /// thread, `rounds` rounds, unwatch (so the mechanism closes until the next
    /// batch). Returns the samples (ns).
    static func wqfsBatch(_ mount: WQFS, queue: String, trigger: SourceTrigger, rounds: Int,
                          unverified: inout Int, events: inout Int, exits: inout Int) -> [UInt64] {
        let root = mount.root
        let kind = trigger.kind
        let path = trigger.sourcePath
        writeText("\(root)/\(path)/watches", "\(queue) 1\n")
        waitUntilWatching(root, path)
        // Kernel events the mechanism read during the batch: the machine's own
        // activity arrives with ours, and each wakes the server and the reader.
        let eventsBefore = Self.events(root, path)
        defer { events += Self.events(root, path) - eventsBefore }
        let fd = openOrFail("\(root)/queues/\(queue)", O_RDONLY)
        defer { close(fd) }
        // One round more than measured: the first warms the path (and the kernel
        // side wqfs has just opened) and is dropped.
        let state = SourceRounds(rounds + 1)
        let ready = Semaphore()
        let reader = JoinableThread {
            state.tid = currentTID()
            ready.post()
            let data = UnsafeMutableRawPointer.allocate(byteCount: Clients.readSize, alignment: 16)
            defer { data.deallocate() }
            var round = 0
            var stamped = false
            // The timed ids (processes: the children), so only their exits count.
            var children = Set<UInt64>()
            while round < state.rounds {
                var n: Int
                repeat { n = read(fd, data, Clients.readSize) } while n < 0 && errno == EINTR
                let now = nanotime()
                if n <= 0 { fail("sources \(kind.rawValue): queue read gave \(n) (\(n < 0 ? String(cString: strerror(errno)) : "end of file"))") }
                var at = 0
                while at + 8 <= n && round < state.rounds {
                    let info = (data + at + 4).loadUnaligned(as: UInt32.self)
                    let length = Int(info & 0x7f)
                    guard length >= 8, at + length <= n else { fail("sources: bad record length \(length)") }
                    let event = trigger.classify(UnsafeRawBufferPointer(start: data + at, count: length))
                    at += length
                    if let event {
                        state.seen.append("round \(round): \(event)")
                        if state.seen.count > 8 { state.seen.removeFirst() }
                    }
                    if case .timed(let id)? = event { children.insert(id) }
                    switch event {
                    case .timed(let id)? where !stamped:
                        state.ends[round] = now
                        state.ids[round] = id
                        stamped = true
                        state.timed.post()
                        if trigger.timedIsFinal {
                            stamped = false
                            round += 1
                            state.final.post()
                        }
                    case .final? where stamped && !trigger.timedIsFinal:
                        stamped = false
                        round += 1
                        state.final.post()
                    case .final(let id)? where children.remove(id) != nil:
                        state.extraFinals.add(1, ordering: .relaxed)
                    default:
                        break
                    }
                }
            }
        }
        ready.wait()
        var samples = [UInt64]()
        for round in 0..<state.rounds {
            usleep(settleMicroseconds)
            trigger.prepare()
            if !waitUntilBlocked(state.tid) { unverified += 1 }
            let start = nanotime()
            trigger.fire()
            func expect(_ semaphore: Semaphore, _ what: String) {
                if semaphore.wait(seconds: 10) { return }
                fail("sources \(kind.rawValue): round \(round): no \(what) record in 10 s; the reader saw last: "
                     + state.seen.joined(separator: ", "))
            }
            expect(state.timed, "timed")
            let expected = trigger.undo()
            expect(state.final, "final")
            if let expected, state.ids[round] != expected {
                fail("sources \(kind.rawValue): round \(round) timed the event of \(state.ids[round]), not of \(expected)")
            }
            if round > 0 { samples.append(state.ends[round] &- trigger.start(stamped: start)) }
        }
        reader.join()
        exits += state.extraFinals.load(ordering: .relaxed)
        writeText("\(root)/\(path)/watches", "!\(queue)\n")
        return samples
    }

    /// One batch through the mount with the queue read by `floor queue`, a small
    /// process of its own, as the floor reads its mechanism: the reader is then
    /// outside the triggering process on both sides (a fork makes the forking
    /// process's memory copy-on-write, which its own reader thread then pays for).
    static func separateReaderBatch(_ mount: WQFS, binary: String, queue: String, trigger: SourceTrigger, rounds: Int,
                                    unverified: inout Int) -> [UInt64] {
        let path = trigger.sourcePath
        writeText("\(mount.root)/\(path)/watches", "\(queue) 1\n")
        waitUntilWatching(mount.root, path)
        defer { writeText("\(mount.root)/\(path)/watches", "!\(queue)\n") }
        // What earlier batches left queued (the last exits) must not be read as ours.
        let fd = open("\(mount.root)/queues/\(queue)", O_RDONLY | O_NONBLOCK)
        if fd >= 0 {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
            close(fd)
        }
        return floorBatch(binary: binary, trigger: trigger, rounds: rounds, mode: "queue",
                          queue: "\(mount.root)/queues/\(queue)", unverified: &unverified)
    }

    /// One batch through cfloor's C relay of the trigger's mechanism: a fresh relay
    /// mount (nothing left queued from before), its queue read by `floor queue`.
    static func relayBatch(cfloor: String, work: String, floorBinary: String, trigger: SourceTrigger, rounds: Int,
                           unverified: inout Int) -> [UInt64] {
        let relay = CFloor(binary: cfloor, mountpoint: "\(work)/relay", queues: 1, relay: trigger.kind.rawValue)
        defer { relay.server.stop() }
        return floorBatch(binary: floorBinary, trigger: trigger, rounds: rounds, mode: "queue",
                          queue: "\(relay.server.mountpoint)/q0", unverified: &unverified)
    }

    /// One batch through the floor: a fresh floor process, the same rounds.
    static func floorBatch(binary: String, trigger: SourceTrigger, rounds: Int, mode: String? = nil,
                           queue: String? = nil, unverified: inout Int) -> [UInt64] {
        let floor = SourceFloor(binary: binary, kind: trigger.kind, mode: mode, keys: trigger.keys, queue: queue,
                                parent: trigger.parent)
        defer { floor.stop() }
        var samples = [UInt64]()
        for round in 0...rounds {
            usleep(settleMicroseconds)
            trigger.prepare()
            if !waitUntilProcessBlocked(floor.pid) { unverified += 1 }
            let start = nanotime()
            trigger.fire()
            var end: UInt64 = 0
            var id: UInt64 = 0
            var finished = false
            while !finished {
                guard let line = floor.lines.next() else { fail("sources-floor \(trigger.kind.rawValue) ended") }
                guard let (event, ns) = trigger.classify(line: line) else { fail("sources-floor said \(line)") }
                switch event {
                case .timed(let got) where end == 0:
                    end = ns
                    id = got
                    if trigger.timedIsFinal { finished = true } else {
                        if let expected = trigger.undo(), expected != id {
                            fail("sources-floor \(trigger.kind.rawValue): timed the event of \(id), not of \(expected)")
                        }
                    }
                case .final where end != 0:
                    finished = true
                default:
                    break
                }
            }
            if trigger.timedIsFinal, let expected = trigger.undo(), expected != id {
                fail("sources-floor \(trigger.kind.rawValue): timed the event of \(id), not of \(expected)")
            }
            if round > 0 { samples.append(end &- trigger.start(stamped: start)) }
        }
        return samples
    }

    static func waitUntilProcessBlocked(_ pid: pid_t, limit: UInt64 = 200_000_000) -> Bool {
        let start = nanotime()
        while true {
            let state = processState(pid)
            if state == UInt8(ascii: "S") || state == UInt8(ascii: "D") { return true }
            if nanotime() &- start > limit { return false }
            sched_yield()
        }
    }

    /// The source's mechanism opens on the server's event thread after the watch is
    /// written; its status says when.
    static func waitUntilWatching(_ root: String, _ path: String) {
        let start = nanotime()
        while !(readText("\(root)/\(path)/status") ?? "").contains("state watching\n") {
            if nanotime() &- start > 5_000_000_000 { fail("\(path) did not start watching in 5 s") }
            usleep(1000)
        }
    }

    /// The `events` count of a source's status.
    static func events(_ root: String, _ path: String) -> Int {
        let text = readText("\(root)/\(path)/status") ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("events ") }
        return line.flatMap { Int($0.dropFirst(7)) } ?? -1
    }

    /// The whole part: rows for the table.
    static func measure(plan: Plan, work: String, wqfsBinary: String, floorSource: String, fuseFloor: CFloor) -> [Row] {
        log("sources: compiling the sources floor")
        let floorBinary = "\(work)/sources-floor"
        // include/ for wqfs/records.h (the queue mode's record layouts).
        if run(["cc", "-O2", "-I", projectInclude(forBenchmarkSource: floorSource), "-o", floorBinary, floorSource]) != 0 {
            fail("cannot compile \(floorSource)")
        }

        let directory = "\(work)/sources-tmpfs"
        mkdir(directory, 0o755)
        // The trigger's tmpfs is unmounted by every way out, like the servers' mounts.
        let tmpfsSlot = Cleanup.register(pid: 0, mountpoint: directory)
        let mount = WQFS(binary: wqfsBinary, mountpoint: "\(work)/wqfs-system",
                         options: "sources=mounts:processes:devices:keys" + (getenv("WQFS_BENCH_OPTIONS").map { "," + String(cString: $0) } ?? ""))
        let keys = BenchKeys.make()
        defer {
            mount.server.stop()
            if isMounted(directory) { _ = umount2(directory, Int32(MNT_DETACH)) }
            Cleanup.unregister(tmpfsSlot)
            keys.remove()
        }
        // The processes trigger: a small process that forks on command.
        let forker = SourceFloor(binary: floorBinary, kind: .processes, mode: "forker")
        defer { forker.stop() }
        func trigger(_ kind: SourceKind) -> SourceTrigger {
            SourceTrigger(kind: kind, directory: directory, keys: keys, forker: forker)
        }
        for kind in SourceKind.allCases { mount.createQueue("lat-\(kind.rawValue)", size: 4096) }

        // Latency, interleaved: per repetition every source, wqfs and floor in an
        // order that alternates, and the FUSE round trip of part 2a beside them.
        var results = [SourceKind: Latencies]()
        var fuse = [UInt64]()
        var fuseUnverified = 0
        var paced = [UInt64]()
        let fuseEndpoints = fuseFloor.endpoints()
        defer { fuseEndpoints.close() }
        for rep in 0..<plan.reps {
            log("sources: repetition \(rep + 1) of \(plan.reps), \(plan.rounds) rounds per source and system")
            for kind in SourceKind.allCases {
                let trigger = trigger(kind)
                var latencies = results[kind] ?? Latencies()
                var unverified = 0
                for wqfsFirst in rep % 2 == 0 ? [true, false] : [false, true] {
                    if wqfsFirst {
                        latencies.wqfs += wqfsBatch(mount, queue: "lat-\(kind.rawValue)", trigger: trigger,
                                                    rounds: plan.rounds, unverified: &unverified, events: &latencies.events,
                                                    exits: &latencies.exits)
                    } else {
                        latencies.floor += floorBatch(binary: floorBinary, trigger: trigger, rounds: plan.rounds,
                                                      unverified: &unverified)
                    }
                }
                if kind != .keys {
                    latencies.separate += separateReaderBatch(mount, binary: floorBinary, queue: "lat-\(kind.rawValue)",
                                                              trigger: trigger, rounds: plan.rounds, unverified: &unverified)
                }
                if kind == .processes || kind == .devices {
                    latencies.relay += relayBatch(cfloor: fuseFloor.binary, work: work, floorBinary: floorBinary,
                                                  trigger: trigger, rounds: plan.rounds, unverified: &unverified)
                }
                if kind == .processes {
                    // Not the target's trigger: this process forking, as runs before
                    // the forker did, for comparison.
                    let own = SourceTrigger(kind: kind, directory: directory, keys: keys)
                    var events = 0, exits = 0 // counted for the target's rows only
                    latencies.selfFork += wqfsBatch(mount, queue: "lat-\(kind.rawValue)", trigger: own, rounds: plan.rounds,
                                                    unverified: &unverified, events: &events, exits: &exits)
                    latencies.selfForkFloor += floorBatch(binary: floorBinary, trigger: own, rounds: plan.rounds,
                                                          unverified: &unverified)
                }
                if kind == .mounts {
                    // Not a floor: how much of the gap is the kernel's side of the
                    // table reads wqfs's mounts mechanism makes before it posts.
                    latencies.rescan += floorBatch(binary: floorBinary, trigger: trigger, rounds: plan.rounds,
                                                   mode: "mounts-rescan", unverified: &unverified)
                }
                latencies.unverified += unverified
                results[kind] = latencies
            }
            let trips = Clients.latency(fuseEndpoints, record: Payload.record, rounds: plan.fuseRounds)
            fuse += trips.samples
            fuseUnverified += trips.unverified
            paced += Clients.latency(fuseEndpoints, record: Payload.record, rounds: plan.rounds,
                                     pause: settleMicroseconds).samples
        }

        var rows = [Row]()
        let section = "5. System sources: latency (triggering call → record read)"
        /// The median of samples in ns, in µs.
        func median(_ samples: [UInt64]) -> Double { percentile(samples, 0.5) / 1000 }
        let fuseMedian = median(fuse)
        let pacedMedian = median(paced)
        // The bound scales by the round trip paced as the sources' rounds are (1 ms
        // of settling before each), so both sides of the comparison start as cold;
        // the back-to-back figure, warm, is given beside it.
        func judged(_ w: Double, _ f: Double, _ who: String = "wqfs") -> (target: Target, note: String) {
            let bound = f + 1.2 * pacedMedian, warmBound = f + 1.2 * fuseMedian
            let target = Target(text: "≤ floor + 1.2 × FUSE round trip paced alike (\(Format.fixed(bound, 1)) µs)", met: w <= bound)
            let note = "\(who) − floor \(Format.fixed(w - f, 1)) µs = \(Format.fixed((w - f) / pacedMedian, 2)) paced FUSE round trips "
                + "(\(Format.fixed((w - f) / fuseMedian, 2)) back to back: ≤ \(Format.fixed(warmBound, 1)) µs \(w <= warmBound ? "met" : "not met"))"
            return (target, note)
        }
        for kind in SourceKind.allCases {
            let latencies = results[kind]!
            let floorMedian = median(latencies.floor)
            for (label, p) in [("median", 0.5), ("p90", 0.9)] {
                let w = percentile(latencies.wqfs, p) / 1000
                let f = percentile(latencies.floor, p) / 1000
                var row = Row(section: section, name: "\(kind.rawValue): \(kind.trigger), \(label) (\(latencies.wqfs.count) rounds)",
                              unit: .microseconds, wqfs: w, floor: f, ratioFloor: w / f)
                if label == "median" {
                    let verdict = judged(w, f)
                    row.target = verdict.target
                    var note = (kind == .keys
                        ? "C floor: the BPF key observer read directly (KeysFloor.swift: the KeyObserver library, epoll on its descriptor, stamped when consume hands over the event); "
                        : "C floor: the same mechanism read directly (Benchmarks/sources-floor/floor.c); ")
                        + verdict.note + "; "
                        + "the wqfs mechanism read \(Format.fixed(Double(latencies.events) / Double(plan.reps * (plan.rounds + 1)), 1)) kernel events per round"
                    if kind == .processes {
                        note += "; the fork is made by floor.c forker, a small process, stamped just before it; "
                            // Each batch's last child exits after its reader stopped at the
                            // last FORK, so rounds, not rounds + 1, exits can be read.
                            + "exit records of the children read by wqfs: \(latencies.exits) of the \(plan.reps * plan.rounds) "
                            + "that come before each batch's reader stops (its last child exits after)"
                    }
                    if latencies.unverified > 0 {
                        note += "; \(latencies.unverified) rounds could not confirm the reader was asleep first"
                    }
                    row.note = note
                }
                rows.append(row)
            }
            let separateMedian = median(latencies.separate)
            if kind != .keys {
                let w = separateMedian, f = floorMedian
                let verdict = judged(w, f)
                var row = Row(section: section, name: "\(kind.rawValue): the same, the queue read by a separate small process, median (\(latencies.separate.count) rounds)",
                              unit: .microseconds, wqfs: w, floor: f, ratioFloor: w / f,
                              note: "wqfs column: floor.c queue reads the wqfs queue, a process of its own as the floor is, so neither reader is a thread of the triggering process; "
                                  + verdict.note)
                row.target = verdict.target
                rows.append(row)
            }
            if !latencies.relay.isEmpty {
                let w = separateMedian, c = median(latencies.relay)
                let verdict = judged(c, floorMedian, "C relay")
                rows.append(Row(section: section, name: "\(kind.rawValue): the same through cfloor's C relay, median (\(latencies.relay.count) rounds)",
                                unit: .microseconds, wqfs: w, floor: c, ratioFloor: w / c,
                                note: "C floor column: cfloor.c relaying the mechanism (one thread blocked on it builds the record and answers the parked read, "
                                    + "a minimal libfuse filesystem doing what wqfs's event thread does), its queue read by floor.c queue; "
                                    + "wqfs column: the separate-reader row above. The C relay against the target's bound (\(verdict.target.text)): "
                                    + (verdict.target.met ? "met" : "not met") + "; " + verdict.note))
            }
            if kind == .processes {
                let w = median(latencies.selfFork), f = median(latencies.selfForkFloor)
                rows.append(Row(section: section, name: "processes: fork(2) of the benchmark process itself → FORK record, median (\(latencies.selfFork.count) rounds)",
                                unit: .microseconds, wqfs: w, floor: f, ratioFloor: w / f,
                                note: "not the target's trigger: the large benchmark process forks (its reader thread then pays copy-on-write, "
                                    + "and the child tears down a copied address space while the event is delivered), as the runs before the forker did; "
                                    + judged(w, f).note))
            }
            if kind == .mounts {
                let w = median(latencies.wqfs), r = median(latencies.rescan)
                rows.append(Row(section: section, name: "mounts: the floor reading the table twice per event before its stamp, median (\(latencies.rescan.count) rounds)",
                                unit: .microseconds, wqfs: w, floor: r, ratioFloor: w / r,
                                note: "C floor column: floor.c mounts-rescan, which reads /proc/self/mountinfo and does listmount + statmount of every mount twice after each fanotify read, as the wqfs mounts mechanism does (the POLLPRI scan, then the event's); the kernel side of that work, without the parse"))
            }
        }
        rows.append(Row(section: section, name: "FUSE round trip: C floor post.bin write → blocked read, median (\(fuse.count) round trips)",
                        unit: .microseconds, wqfs: .nan, floor: fuseMedian,
                        note: "the 2a floor figure, measured again here between the sources' batches, back to back (warm)"
                            + (fuseUnverified > 0 ? "; \(fuseUnverified) rounds unverified" : "")))
        rows.append(Row(section: section, name: "FUSE round trip, p90 (\(fuse.count) round trips)", unit: .microseconds,
                        wqfs: .nan, floor: percentile(fuse, 0.9) / 1000))
        rows.append(Row(section: section, name: "FUSE round trip paced as the sources' rounds, median (\(paced.count) round trips)",
                        unit: .microseconds, wqfs: .nan, floor: pacedMedian,
                        note: "the same C floor round trip with the sources' 1 ms of settling before each, so it starts as cold as a source's round; the targets' scale"))

        rows.append(describeCost(plan: plan, mount: mount, trigger: trigger(.keys), section: section))
        rows += idle(plan: plan, mount: mount, trigger: trigger)
        return rows
    }

    /// What the server's key observer adds to a read-only keyctl: KEYCTL_DESCRIBE of
    /// the bench's keyring in a tight loop (keyobserver-bench's method), with the
    /// keyring watched through the mount (the server's BPF program attached) and with
    /// no key watched (the server has detached it), rounds alternating, median of the
    /// rounds' ns per call.
    static func describeCost(plan: Plan, mount: WQFS, trigger: SourceTrigger, section: String) -> Row {
        let calls = plan.describeCalls
        let ring = UInt(UInt32(bitPattern: trigger.keys!.ring))
        let path = trigger.sourcePath
        let root = mount.root
        log("sources: KEYCTL_DESCRIBE, \(calls) calls per round, watched-for and not")
        var buffer = [CChar](repeating: 0, count: 256)
        func round() -> Double {
            buffer.withUnsafeMutableBufferPointer { out in
                let address = UInt(bitPattern: out.baseAddress)
                let start = nanotime()
                for _ in 0..<calls where wq_keyctl(6 /* KEYCTL_DESCRIBE */, ring, address, 256, 0) < 0 {
                    fail("KEYCTL_DESCRIBE: \(String(cString: strerror(errno)))")
                }
                return Double(nanotime() &- start) / Double(calls)
            }
        }
        var watched = [Double](), unwatched = [Double]()
        for index in 0..<plan.describeRounds * 2 {
            let watch = (index % 2 == 0) == (index / 2 % 2 == 0)
            if watch {
                writeText("\(root)/\(path)/watches", "lat-keys 1\n")
                waitUntilWatching(root, path)
                watched.append(round())
                writeText("\(root)/\(path)/watches", "!lat-keys\n")
            } else {
                let start = nanotime()
                while !(readText("\(root)/\(path)/status") ?? "").contains("state idle\n") {
                    if nanotime() &- start > 5_000_000_000 { fail("\(path) did not stop watching in 5 s") }
                    usleep(1000)
                }
                unwatched.append(round())
            }
        }
        let w = watched.sorted()[watched.count / 2], u = unwatched.sorted()[unwatched.count / 2]
        return Row(section: section, name: "keyctl describe, watched-for vs not: KEYCTL_DESCRIBE of the watched keyring, median of \(watched.count) rounds of \(calls) calls",
                   unit: .nanoseconds, wqfs: w, floor: u, ratioFloor: w / u,
                   note: "wqfs column: a key watched through the mount, the server's BPF observer attached; C floor column: no key watched (observer detached); added \(Format.fixed(w - u, 0)) ns per call; keyobserver-bench's method")
    }

    /// Idle cost: the server's ticks over a quiet window, first with no watches
    /// (every mechanism closed), then with every source watched by its own queue,
    /// a reader asleep in read() on each.
    static func idle(plan: Plan, mount: WQFS, trigger: (SourceKind) -> SourceTrigger) -> [Row] {
        let root = mount.root
        let pid = mount.server.pid
        let section = "5. System sources: idle cost (server CPU ticks, utime + stime, \(Format.fixed(plan.idleSeconds, 0)) s doing nothing)"
        let hz = Int(sysconf(Int32(_SC_CLK_TCK)))
        let window = UInt32(plan.idleSeconds * 1e6)
        var rows = [Row]()

        log("sources: idle \(Format.fixed(plan.idleSeconds, 0)) s with no watches")
        usleep(500_000) // what the latency part started is over
        var before = cpuTicks(pid)
        usleep(window)
        let unwatched = cpuTicks(pid) - before

        log("sources: idle \(Format.fixed(plan.idleSeconds, 0)) s with every source watched, a reader blocked on each")
        let state = IdleReaders(SourceKind.allCases.count)
        var readers = [JoinableThread]()
        let started = Semaphore()
        for (index, kind) in SourceKind.allCases.enumerated() {
            let queue = "idle-\(kind.rawValue)"
            mount.createQueue(queue, size: 4096)
            let path = trigger(kind).sourcePath
            writeText("\(root)/\(path)/watches", "\(queue) 1\n")
            waitUntilWatching(root, path)
            let fd = openOrFail("\(root)/queues/\(queue)", O_RDONLY)
            readers.append(JoinableThread {
                state.tids[index] = currentTID()
                started.post()
                let data = UnsafeMutableRawPointer.allocate(byteCount: Clients.readSize, alignment: 16)
                defer { data.deallocate() }
                // Reads whatever comes until told to stop; each stop is a read's return.
                while !state.stop.load(ordering: .acquiring) {
                    let n = read(fd, data, Clients.readSize)
                    if n <= 0 && errno != EINTR { break }
                }
                close(fd)
            })
        }
        for _ in readers { started.wait() }
        usleep(500_000)
        for tid in state.tids where !waitUntilBlocked(tid) { log("sources: warning: a reader is not asleep in read()") }
        let events0 = SourceKind.allCases.map { events(root, trigger($0).sourcePath) }
        before = cpuTicks(pid)
        usleep(window)
        let watched = cpuTicks(pid) - before
        let events1 = SourceKind.allCases.map { events(root, trigger($0).sourcePath) }

        // Wake each reader with an event of its source; each sees the stop.
        state.stop.store(true, ordering: .releasing)
        for kind in SourceKind.allCases {
            let trigger = trigger(kind)
            trigger.prepare()
            trigger.fire()
            usleep(20_000)
            _ = trigger.undo()
        }
        for reader in readers { reader.join() }
        for kind in SourceKind.allCases {
            writeText("\(root)/\(trigger(kind).sourcePath)/watches", "!idle-\(kind.rawValue)\n")
        }

        let seen = zip(SourceKind.allCases, zip(events0, events1)).map { "\($0.0.rawValue) \($0.1.1 - $0.1.0)" }
        let target = Target(text: "0 or near 0", met: watched <= 2)
        rows.append(Row(section: section, name: "every source watched by its own queue, a reader blocked on each", unit: .ticks,
                        wqfs: Double(watched), target: target,
                        note: "no floor: nothing to compare a quiet kernel socket with; \(hz) ticks/s; kernel events read in the window "
                            + "(the machine's own activity, e.g. other tenants' processes): " + seen.joined(separator: ", ")))
        rows.append(Row(section: section, name: "no watches (every mechanism closed)", unit: .ticks, wqfs: Double(unwatched),
                        note: "no floor, as above"))
        return rows
    }
}
