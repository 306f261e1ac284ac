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

/// Runs `executable arguments` to completion or `timeout`, output captured in files
/// (no pipe can fill up), with signals unblocked through the test client's `exec`
/// (a test thread's children start with SIGTERM blocked, which would make the
/// shell's `timeout` and `kill` useless).
func run(_ executable: String, _ arguments: [String], directory: String? = nil,
         environment: [String: String] = [:], timeout: TimeInterval = 30) throws -> Outcome {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("out"), errURL = scratch.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try Products.path("wqtestclient"))
    process.arguments = ["exec", executable] + arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    defer { try? out.close(); try? err.close() }
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let deadline = Date(timeIntervalSinceNow: timeout)
    while process.isRunning && Date() < deadline { usleep(2_000) }
    var status: Int32 = -1
    if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    } else {
        status = process.terminationStatus
    }
    return Outcome(status: status,
                   stdout: String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self),
                   stderr: String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self))
}

/// A wqfs mount for one test. Make it with `withMount`.
final class Mount {
    /// The temporary directory holding the mount point and scratch files.
    let base: String
    /// The mount point.
    let path: String
    /// Scratch directory outside the mount, for the shell's files.
    let scratch: String
    private(set) var server: Process?
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

    /// Starts `wqfs PATH -f [-o options]` and waits until the mount is up.
    fileprivate func start(options: [String]) throws {
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Products.path("wqfs"))
        process.arguments = [path, "-f"] + (options.isEmpty ? [] : ["-o", options.joined(separator: ",")])
        process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        try? log.close()
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

    /// The environment scripts see: the products directory first in PATH, `$C`
    /// the test client, `$M` the mount, `$T` a scratch directory.
    var environment: [String: String] {
        let products = (try? Products.path("wqfs")).map { URL(fileURLWithPath: $0).deletingLastPathComponent().path } ?? ""
        return [
            "PATH": products + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"),
            "C": (try? Products.path("wqtestclient")) ?? "wqtestclient",
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

/// Mounts a fresh wqfs, runs `body`, and always tears the mount down.
func withMount<T>(_ options: [String] = [], _ body: (Mount) throws -> T) throws -> T {
    let mount = try Mount()
    defer { mount.tearDown() }
    try mount.start(options: options)
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
