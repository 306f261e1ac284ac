import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The fixture every integration test uses: a real `wqfs DIR -f` child process on a
// fresh temporary directory, torn down on every exit path (success, failed
// expectation, thrown error), plus a shell runner that never blocks forever.

/// Whether this machine can run mount tests: FUSE present and root (mounting with
/// `allow_other` and using `setpriv` need root).
enum Environment {
    static var canMount: Bool { FileManager.default.fileExists(atPath: "/dev/fuse") && getuid() == 0 }
    static let skipReason: Comment = "needs /dev/fuse and root to mount wqfs; skipped"
}

/// Executables SwiftPM built into the products directory that holds the test
/// runner (`swift build` builds them all before `swift test` runs).
enum Products {
    /// The products directory: the runner's own directory (found through
    /// /proc/self/exe), or argv[0]'s, whichever holds `wqfs`.
    static let directory: URL? = {
        let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let candidates = [runner, URL(fileURLWithPath: CommandLine.arguments[0])].map { $0.deletingLastPathComponent() }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.appendingPathComponent("wqfs").path) }
    }()

    /// The named product; `WQFS_PRODUCTS` overrides the directory.
    static func path(_ name: String) throws -> String {
        let base = ProcessInfo.processInfo.environment["WQFS_PRODUCTS"].map { URL(fileURLWithPath: $0) } ?? directory
        guard let base, FileManager.default.isExecutableFile(atPath: base.appendingPathComponent(name).path) else {
            throw FixtureError("no \(name) executable next to the test runner (\(CommandLine.arguments[0])); run `swift build` first")
        }
        return base.appendingPathComponent(name).path
    }
}

extension Products {
    /// The executables scripts run (wqfs, wqcat, the C client), copied to a directory
    /// every user can enter: tests run them as nobody, who cannot reach a checkout
    /// inside a private (0700) directory such as root's home. Made once per test
    /// process, removed when it exits; nil when the products are missing.
    static let reachableDirectory: String? = {
        guard let wqfs = try? path("wqfs") else { return nil }
        let from = URL(fileURLWithPath: wqfs).deletingLastPathComponent()
        let to = stagingPath(for: getpid())
        let files = FileManager.default
        try? files.removeItem(atPath: to)
        do {
            try files.createDirectory(atPath: to, withIntermediateDirectories: true)
            chmod(to, 0o755)
            for name in ["wqfs", "wqcat", "wqtestclient", "wqfs-compat-client", "wqfs-kernel-api-client", "libwqfs-compat.so"] where files.isExecutableFile(atPath: from.appendingPathComponent(name).path) {
                try files.copyItem(atPath: from.appendingPathComponent(name).path, toPath: to + "/" + name)
                chmod(to + "/" + name, 0o755)
            }
        } catch {
            return nil
        }
        atexit { try? FileManager.default.removeItem(atPath: Products.stagingPath(for: getpid())) }
        return to
    }()

    static func stagingPath(for process: pid_t) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-test-bin.\(process)").path
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// What a finished command left behind.
struct Outcome: CustomStringConvertible {
    /// Exit status; -1 when it was killed for running past its timeout.
    var status: Int32
    var stdout: String
    var stderr: String
    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLastIfEmpty() }
    var description: String { "status \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

extension Array where Element == String {
    func dropLastIfEmpty() -> [String] { last == "" ? Array(dropLast()) : self }
}

/// A child process started with posix_spawn and reaped with waitpid.
///
/// Not Foundation.Process: on Linux it learns of a child's exit through a socket
/// the child inherits, so a background job or daemon that outlives a shell keeps
/// the shell "running" for ever, and a test thread's children start with SIGTERM
/// blocked. Here every child starts with an empty signal mask and default
/// dispositions, in a process group of its own (so a timeout kills its whole tree).
final class Child {
    let processIdentifier: Int32
    private var status: Int32?

    /// Starts `executable arguments` with standard input from /dev/null and output
    /// appended to the given files.
    init(_ executable: String, _ arguments: [String], directory: String? = nil, environment: [String: String],
         stdout: String, stderr: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), defaults = sigset_t()
        sigemptyset(&none)
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGALRM, SIGCHLD, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        // posix_spawn_file_actions_addchdir_np is not imported: the test client
        // changes directory and execs when one is asked for.
        var executable = executable, arguments = arguments
        if let directory {
            arguments = ["exec", "-C", directory, executable] + arguments
            executable = try Products.path("wqtestclient")
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw FixtureError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        processIdentifier = pid
    }

    /// Reaps the child if it has exited.
    private func reap(blocking: Bool) {
        guard status == nil else { return }
        var raw: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(processIdentifier, &raw, blocking ? 0 : WNOHANG) } while result < 0 && errno == EINTR
        if result == processIdentifier {
            // Exit code, or 128 + the signal that killed it, as a shell reports it.
            status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        } else if result < 0 {
            status = -1 // not our child any more (ECHILD): nothing to wait for
        }
    }

    var isRunning: Bool {
        reap(blocking: false)
        return status == nil
    }

    /// The exit status (128 + signal when killed); -1 while running.
    var terminationStatus: Int32 { reap(blocking: false); return status ?? -1 }

    func waitUntilExit() { reap(blocking: true) }

    /// Signals the child's whole process group.
    func signalGroup(_ signal: Int32) { kill(-processIdentifier, signal) }
}

/// Runs `executable arguments` to completion or `timeout`, output captured in files
/// (no pipe can fill up). Past `timeout` its whole process group is killed and the
/// status is -1. Background jobs it left behind are killed when it ends: nothing a
/// command starts outlives it (a daemon that called setsid() excepted).
func run(_ executable: String, _ arguments: [String], directory: String? = nil,
         environment: [String: String] = [:], timeout: TimeInterval = 30) throws -> Outcome {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-run-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let outPath = scratch + "/out", errPath = scratch + "/err"
    let child = try Child(executable, arguments, directory: directory, environment: environment,
                          stdout: outPath, stderr: errPath)
    let deadline = Date(timeIntervalSinceNow: timeout)
    while child.isRunning && Date() < deadline { usleep(2_000) }
    var status: Int32 = -1
    if child.isRunning {
        child.signalGroup(SIGKILL)
        child.waitUntilExit()
    } else {
        status = child.terminationStatus
    }
    child.signalGroup(SIGKILL)
    return Outcome(status: status,
                   stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// A wqfs mount for one test. Make it with `withMount`.
final class Mount {
    /// The temporary directory holding the mount point and scratch files.
    let base: String
    /// The mount point.
    let path: String
    /// Scratch directory outside the mount, for the shell's files.
    let scratch: String
    private(set) var server: Child?
    let logPath: String

    fileprivate init() throws {
        base = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-it-\(UUID().uuidString)").path
        path = base + "/mnt"
        scratch = base + "/tmp"
        logPath = base + "/server.log"
        for dir in [base, path, scratch] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        // Unprivileged test users must reach the mount point and scratch files.
        chmod(base, 0o755)
        chmod(scratch, 0o1777)
    }

    /// Starts `wqfs PATH -f [-o options]` and waits until the mount is up. Without a
    /// `sources=` option the mount has no system sources, so a test of the user
    /// layout sees only what it made. `launcher`: a program (absolute path) and its
    /// arguments that exec the server, such as setpriv dropping a capability.
    fileprivate func start(options: [String], launcher: [String] = []) throws {
        let options = options.contains { $0.hasPrefix("sources=") } ? options : options + ["sources=none"]
        let command = launcher + [try Products.path("wqfs"), path, "-f"]
            + (options.isEmpty ? [] : ["-o", options.joined(separator: ",")])
        let process = try Child(command[0], Array(command.dropFirst()),
                                environment: [:], stdout: logPath, stderr: logPath)
        server = process
        let deadline = Date(timeIntervalSinceNow: 10)
        while !Mount.isMounted(path) {
            guard process.isRunning else {
                throw FixtureError("wqfs exited with status \(process.terminationStatus) before mounting:\n\(serverLog)")
            }
            guard Date() < deadline else { throw FixtureError("wqfs did not mount \(path) within 10 s:\n\(serverLog)") }
            usleep(10_000)
        }
    }

    /// The server's process id.
    var serverPID: Int32 { server?.processIdentifier ?? -1 }

    /// Waits up to `timeout` for the server to exit by itself; its status, or nil
    /// if it is still running.
    func waitForExit(timeout: TimeInterval) -> Int32? {
        guard let server else { return nil }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while server.isRunning && Date() < deadline { usleep(5_000) }
        return server.isRunning ? nil : server.terminationStatus
    }

    var serverLog: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Whether /proc/self/mountinfo lists `path` as a fuse.wqfs mount.
    static func isMounted(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count > 4 else { continue }
            let mountPoint = fields[4].replacingOccurrences(of: "\\040", with: " ")
            if mountPoint == path && halves[1].hasPrefix("fuse.wqfs ") { return true }
        }
        return false
    }

    /// Stops the server with SIGTERM and returns its exit status, or nil if it had
    /// to be killed. Leaves nothing mounted either way.
    @discardableResult
    func stop() -> Int32? {
        var status: Int32?
        if let server, server.isRunning {
            kill(server.processIdentifier, SIGTERM)
            let deadline = Date(timeIntervalSinceNow: 5)
            while server.isRunning && Date() < deadline { usleep(5_000) }
            if server.isRunning {
                kill(server.processIdentifier, SIGKILL)
                server.waitUntilExit()
            } else {
                status = server.terminationStatus
            }
        } else if let server {
            status = server.terminationStatus
        }
        Mount.forceUnmount(path)
        return status
    }

    /// Lazily detaches whatever is still mounted at `path`.
    static func forceUnmount(_ path: String) {
        var tries = 0
        while isMounted(path) && tries < 3 {
            _ = try? run("/bin/sh", ["-c", "fusermount3 -u -z \"$1\" 2>/dev/null || umount -l \"$1\"", "sh", path], timeout: 10)
            tries += 1
        }
    }

    fileprivate func tearDown() {
        stop()
        if !Mount.isMounted(path) { try? FileManager.default.removeItem(atPath: base) }
    }

    /// The environment scripts see: the products (copies every user can reach)
    /// first in PATH, `$C` the test client, `$M` the mount, `$T` a scratch directory,
    /// `$COMPAT` the compat client, `$KAPI` the kernel-API client and `$SHIM`
    /// libwqfs-compat.so (DESIGN.md §7).
    var environment: [String: String] {
        let products = Products.reachableDirectory ?? ""
        return [
            "PATH": products + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"),
            "C": products + "/wqtestclient",
            "COMPAT": products + "/wqfs-compat-client", "SHIM": products + "/libwqfs-compat.so",
            "KAPI": products + "/wqfs-kernel-api-client",
            "M": path, "T": scratch, "LC_ALL": "C",
        ]
    }

    /// Shell functions every script gets:
    /// * `waitfor 'CONDITION'`: polls CONDITION every 20 ms, fails after 10 s;
    /// * `watch QUEUE SOURCE ID`: makes the queue and source if missing, adds the watch;
    /// * `hexof FILE`: the file's bytes as lowercase hex on one line.
    static let prelude = #"""
        waitfor() { _n=0; until eval "$1"; do _n=$((_n+1)); if [ $_n -gt 500 ]; then echo "timed out waiting for: $1" >&2; return 1; fi; sleep 0.02; done; }
        watch() { [ -e "queues/$1" ] || touch "queues/$1" || return 1; [ -d "sources/$2" ] || mkdir "sources/$2" || return 1; echo "$1 $3" > "sources/$2/watches"; }
        hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; echo; }

        """#

    /// Runs `script` with /bin/sh in the mount's root.
    func sh(_ script: String, timeout: TimeInterval = 30) throws -> Outcome {
        try run("/bin/sh", ["-c", Mount.prelude + script], directory: path, environment: environment, timeout: timeout)
    }

    /// Runs `script` as the unprivileged user nobody (65534).
    func shAsNobody(_ script: String, timeout: TimeInterval = 30) throws -> Outcome {
        try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", Mount.prelude + script],
                directory: path, environment: environment, timeout: timeout)
    }

    /// Standard output of `script`, which must exit 0.
    func out(_ script: String, timeout: TimeInterval = 30,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let outcome = try sh(script, timeout: timeout)
        #expect(outcome.status == 0, "`\(script)` failed: \(outcome)", sourceLocation: sourceLocation)
        return outcome.stdout
    }

    /// Reads a file of the mount (relative path) as text.
    func text(_ relative: String) throws -> String {
        try String(contentsOfFile: path + "/" + relative, encoding: .utf8)
    }

    /// The `key value` lines of `queues/NAME.status`.
    func status(_ queue: String) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for line in try text("queues/\(queue).status").split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }
}

/// Mounts a fresh wqfs (started through `launcher` when given), runs `body`, and
/// always tears the mount down.
func withMount<T>(_ options: [String] = [], launcher: [String] = [], _ body: (Mount) throws -> T) throws -> T {
    let mount = try Mount()
    defer { mount.tearDown() }
    try mount.start(options: options, launcher: launcher)
    do {
        return try body(mount)
    } catch {
        Issue.record("server log:\n\(mount.serverLog)")
        throw error
    }
}

/// The root suite: one mount at a time (the VMs have 2 cores; the blocking and
/// stress tests time things), skipped without FUSE or root.
@Suite("wqfs mounted", .serialized, .enabled(if: Environment.canMount, Environment.skipReason))
struct MountTests {}
