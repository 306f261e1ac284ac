// Small system helpers for the benchmark: clocks, threads, semaphores, processes,
// mounts, and cleanup that also runs from a signal handler.
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Monotonic nanoseconds.
@inline(__always)
func nanotime() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

func seconds(_ from: UInt64, _ to: UInt64) -> Double { Double(to &- from) / 1e9 }

/// Writes a line to standard error (progress; stdout carries the table or JSON).
func log(_ text: String) {
    let line = text + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

func fail(_ text: String) -> Never {
    log("wqfs-bench: \(text)")
    Cleanup.runAndRemoveWorkDirectory()
    exit(1)
}

// MARK: threads

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// A joinable pthread running `body`.
struct JoinableThread {
    let handle: pthread_t

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { arg in
            let body = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
            body.body()
            return nil
        }, box)
        if rc != 0 { fail("pthread_create: \(String(cString: strerror(rc)))") }
        self.handle = handle
    }

    func join() { pthread_join(handle, nil) }
}

/// A POSIX semaphore.
final class Semaphore: @unchecked Sendable {
    private let sem = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
    init(_ value: UInt32 = 0) { sem_init(sem, 0, value) }
    deinit { sem_destroy(sem); sem.deallocate() }
    func post() { sem_post(sem) }
    func wait() { while sem_wait(sem) != 0 && errno == EINTR {} }

    /// Waits at most `seconds`; false on timeout (so an event that never comes
    /// ends the run with a message instead of hanging it).
    func wait(seconds: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += seconds
        while sem_timedwait(sem, &deadline) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }
}

/// A counter a writer waits on until a reader has caught up (flow control).
final class Progress: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var value = 0
    private var waiting = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(cond)
        mutex.deallocate()
        cond.deallocate()
    }

    func set(_ newValue: Int) {
        pthread_mutex_lock(mutex)
        value = newValue
        let wake = waiting
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_signal(cond) }
    }

    func get() -> Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return value
    }

    /// Waits until the value is at least `target`.
    func wait(atLeast target: Int) {
        pthread_mutex_lock(mutex)
        while value < target {
            waiting = true
            pthread_cond_wait(cond, mutex)
        }
        waiting = false
        pthread_mutex_unlock(mutex)
    }
}

/// The kernel thread id of the calling thread (gettid(2) needs _GNU_SOURCE, which
/// Swift's Glibc module does not define; /proc/thread-self names it: "PID/task/TID").
func currentTID() -> pid_t {
    var buffer = [CChar](repeating: 0, count: 64)
    let n = readlink("/proc/thread-self", &buffer, 63)
    guard n > 0 else { fail("readlink /proc/thread-self: \(String(cString: strerror(errno)))") }
    let text = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    guard let tid = text.split(separator: "/").last.flatMap({ pid_t($0) }) else { fail("bad /proc/thread-self: \(text)") }
    return tid
}

/// The scheduler state letter of a thread of this process ('R', 'S', 'D', ...).
func threadState(_ tid: pid_t) -> UInt8 {
    let path = "/proc/self/task/\(tid)/stat"
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 512) }
    guard n > 0 else { return 0 }
    // "tid (comm) S ...": the state follows the last ')'.
    guard let close = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")), close + 2 < n else { return 0 }
    return buffer[close + 2]
}

/// Waits until thread `tid` sleeps (blocked in a system call); false after `limit` ns.
func waitUntilBlocked(_ tid: pid_t, limit: UInt64 = 200_000_000) -> Bool {
    let start = nanotime()
    while true {
        let state = threadState(tid)
        if state == UInt8(ascii: "S") || state == UInt8(ascii: "D") { return true }
        if nanotime() &- start > limit { return false }
        sched_yield()
    }
}

// MARK: files

func openOrFail(_ path: String, _ flags: Int32) -> Int32 {
    let fd = open(path, flags | O_CLOEXEC)
    if fd < 0 { fail("open \(path): \(String(cString: strerror(errno)))") }
    return fd
}

/// Writes all of `bytes`, retrying short writes and EINTR.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            fail("write: \(String(cString: strerror(errno)))")
        }
        offset += n
    }
}

/// Writes a small text file (a control file of the mount).
func writeText(_ path: String, _ text: String) {
    let fd = openOrFail(path, O_WRONLY)
    defer { close(fd) }
    var text = text
    text.withUTF8 { writeAll(fd, UnsafeRawBufferPointer($0)) }
}

func readText(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var result = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, 65536) }
        if n <= 0 { break }
        result += buffer[0..<n]
    }
    return String(decoding: result, as: UTF8.self)
}

func createFile(_ path: String) {
    let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
    if fd < 0 { fail("create \(path): \(String(cString: strerror(errno)))") }
    close(fd)
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}

// MARK: processes

/// Starts `argv` with stdout sent to stderr (stdout is reserved for results).
func spawn(_ argv: [String], stdoutToStderr: Bool = true) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if stdoutToStderr { posix_spawn_file_actions_adddup2(&actions, 2, 1) }
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid = pid_t()
    let rc = posix_spawnp(&pid, argv[0], &actions, nil, cArgs, environ)
    if rc != 0 { fail("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
    return pid
}

/// Runs `argv` to completion; returns its exit status (-1 if killed).
@discardableResult
func run(_ argv: [String]) -> Int32 {
    let pid = spawn(argv)
    return waitFor(pid)
}

func waitFor(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS by hand: the macros are not imported.
    return status & 0x7f == 0 ? (status >> 8) & 0xff : -1
}

/// The project's include/ (wqfs/records.h) for a benchmark's C source, which lives
/// at Benchmarks/NAME/FILE.c.
func projectInclude(forBenchmarkSource source: String) -> String {
    source.split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/") + "/include"
}

/// Output of a shell command (for machine facts), trimmed.
func shellOutput(_ command: String) -> String {
    guard let pipe = popen(command, "r") else { return "" }
    var result = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, 4096, pipe) }
        if n == 0 { break }
        result += buffer[0..<n]
    }
    pclose(pipe)
    var text = String(decoding: result, as: UTF8.self)
    while text.last == "\n" || text.last == " " { text.removeLast() }
    return text
}

// MARK: mounts and cleanup

func isMounted(_ path: String) -> Bool {
    guard let mounts = readText("/proc/mounts") else { return false }
    return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == path }
}

/// Mounts and child processes to undo on every path out, including signals. The
/// signal handler only reads preallocated C memory and calls async-signal-safe
/// functions (kill, fork, execv, waitpid, _exit).
enum Cleanup {
    static let capacity = 32
    nonisolated(unsafe) static let pids = UnsafeMutablePointer<pid_t>.allocate(capacity: capacity)
    nonisolated(unsafe) static let paths = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
    nonisolated(unsafe) static let fusermount = strdup("/usr/bin/fusermount3")!
    /// Per slot, the whole argv of `fusermount3 -u -z PATH`, built when the mount is
    /// registered: the handler and the forked child must not allocate.
    nonisolated(unsafe) static let argvs = UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>.allocate(capacity: capacity)
    static let lock = Mutex(())
    /// `rm -rf WORKDIR`, prebuilt for the handler once the work directory exists.
    nonisolated(unsafe) static let removeArgv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 4)
    nonisolated(unsafe) static let rm = strdup("/bin/rm")!

    static func setWorkDirectory(_ path: String) {
        removeArgv[0] = strdup("rm")
        removeArgv[1] = strdup("-rf")
        removeArgv[2] = strdup(path)
    }

    static func install() {
        removeArgv.initialize(repeating: nil, count: 4)
        pids.initialize(repeating: 0, count: capacity)
        paths.initialize(repeating: nil, count: capacity)
        for slot in 0..<capacity {
            let argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 5)
            argv.initialize(repeating: nil, count: 5)
            argv[0] = strdup("fusermount3")
            argv[1] = strdup("-u")
            argv[2] = strdup("-z")
            (argvs + slot).initialize(to: argv)
        }
        for sig in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
            signal(sig) { sig in
                Cleanup.undoAll()
                _exit(128 + sig)
            }
        }
        signal(SIGPIPE, SIG_IGN)
    }

    /// Registers a server process and its mountpoint; returns the slot.
    static func register(pid: pid_t, mountpoint: String) -> Int {
        lock.withLock { _ in
            for slot in 0..<capacity where pids[slot] == 0 && paths[slot] == nil {
                let path = strdup(mountpoint)
                argvs[slot][3] = path
                paths[slot] = path
                pids[slot] = pid
                return slot
            }
            fail("too many mounts")
        }
    }

    /// Registers a process that holds no mount (the sources floor); returns the slot.
    static func register(process pid: pid_t) -> Int {
        lock.withLock { _ in
            for slot in 0..<capacity where pids[slot] == 0 && paths[slot] == nil {
                pids[slot] = pid
                return slot
            }
            fail("too many processes")
        }
    }

    static func unregister(_ slot: Int) {
        lock.withLock { _ in
            pids[slot] = 0
            let path = paths[slot]
            paths[slot] = nil
            argvs[slot][3] = nil
            free(path)
        }
    }

    /// Async-signal-safe: SIGTERM to every server, then a lazy unmount of every path.
    static func undoAll() {
        for slot in 0..<capacity where pids[slot] > 0 { kill(pids[slot], SIGTERM) }
        for slot in 0..<capacity {
            guard let path = paths[slot] else { continue }
            let child = fork()
            if child == 0 {
                _ = path
                execv(fusermount, argvs[slot])
                _exit(127)
            }
            if child > 0 {
                var status: Int32 = 0
                waitpid(child, &status, 0)
            }
        }
        if removeArgv[2] != nil {
            let child = fork()
            if child == 0 {
                execv(rm, removeArgv)
                _exit(127)
            }
            if child > 0 {
                var status: Int32 = 0
                waitpid(child, &status, 0)
            }
        }
    }

    /// Normal-path cleanup of whatever is still registered.
    static func run() {
        let slots = lock.withLock { _ in (0..<capacity).filter { paths[$0] != nil || pids[$0] != 0 } }
        for slot in slots {
            let pid = pids[slot]
            // A process-only slot has no path; "" is never mounted, so only the process is stopped.
            let path = paths[slot].map { String(cString: $0) } ?? ""
            stopServer(pid: pid, mountpoint: path)
            unregister(slot)
        }
    }

    /// Normal-path cleanup on failure: the mounts, then the work directory.
    static func runAndRemoveWorkDirectory() {
        run()
        if let directory = removeArgv[2] { _ = waitFor(spawn(["rm", "-rf", String(cString: directory)])) }
    }
}

/// A FUSE server the benchmark started and mounted.
final class MountedServer: @unchecked Sendable {
    let name: String
    let mountpoint: String
    let pid: pid_t
    private var slot: Int?

    /// Starts `argv` (which mounts `mountpoint` in the foreground) and waits for the mount.
    init(name: String, mountpoint: String, argv: [String]) {
        self.name = name
        self.mountpoint = mountpoint
        mkdir(mountpoint, 0o755)
        pid = spawn(argv)
        slot = Cleanup.register(pid: pid, mountpoint: mountpoint)
        let start = nanotime()
        while !isMounted(mountpoint) {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                slot.map(Cleanup.unregister)
                slot = nil
                fail("\(name) exited before mounting \(mountpoint)")
            }
            if nanotime() - start > 20_000_000_000 { fail("\(name) did not mount \(mountpoint) in 20 s") }
            usleep(10_000)
        }
    }

    /// Stops the server and makes sure the mount is gone.
    func stop() {
        guard let slot else { return }
        stopServer(pid: pid, mountpoint: mountpoint)
        Cleanup.unregister(slot)
        self.slot = nil
        rmdir(mountpoint)
    }

    /// Resident memory of the server, in bytes.
    var residentBytes: Int {
        guard let status = readText("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }
}

/// SIGTERM, wait up to 5 s, then SIGKILL; then lazy unmount if still mounted.
func stopServer(pid: pid_t, mountpoint: String) {
    if pid > 0 {
        kill(pid, SIGTERM)
        let start = nanotime()
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if nanotime() - start > 5_000_000_000 {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(5_000)
        }
    }
    if isMounted(mountpoint) { run(["fusermount3", "-u", "-z", mountpoint]) }
}

/// Resident set size of this process, in bytes (/proc/self/statm).
func residentBytes() -> Int {
    guard let text = readText("/proc/self/statm") else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
