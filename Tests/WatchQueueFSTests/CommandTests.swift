import Foundation
import Testing
import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

/// The directory SwiftPM built wqfs, wqcat and the test runner into.
private func productsDirectory() throws -> String {
    URL(fileURLWithPath: try Products.path("wqfs")).deletingLastPathComponent().path
}

/// Processes whose command line is `…/wqfs … DIR …`: the daemon a mount helper started.
private func wqfsDaemons(servingAt dir: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { return nil }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        guard let first = arguments.first, first.hasSuffix("wqfs"), arguments.contains(dir) else { return nil }
        return pid
    }
}

/// Mounts with `command` (a shell command that daemonizes wqfs on `$D`), runs `body`,
/// and always unmounts, stops the daemon and removes the directory.
private func withHelperMount(_ command: String, _ body: (String) throws -> Void) throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-helper-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let products = try productsDirectory()
    defer {
        Mount.forceUnmount(dir)
        let deadline = Date(timeIntervalSinceNow: 5)
        while !wqfsDaemons(servingAt: dir).isEmpty && Date() < deadline { usleep(10_000) }
        for pid in wqfsDaemons(servingAt: dir) { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: dir)
    }
    let outcome = try run("/bin/sh", ["-c", command], environment: [
        "PATH": products + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"),
        "D": dir, "P": products,
    ], timeout: 20)
    try #require(outcome.status == 0, "\(command): \(outcome)")
    #expect(Mount.isMounted(dir))
    try body(dir)
    // umount stops the daemon, which exits by itself.
    let umount = try run("/bin/umount", [dir], timeout: 10)
    #expect(umount.status == 0, "\(umount)")
    #expect(!Mount.isMounted(dir))
    let deadline = Date(timeIntervalSinceNow: 5)
    while !wqfsDaemons(servingAt: dir).isEmpty && Date() < deadline { usleep(10_000) }
    #expect(wqfsDaemons(servingAt: dir).isEmpty, "the daemon outlived umount")
}

// DESIGN §3: the wqfs command: --help, the mount helper forms, and stopping with
// SIGTERM while readers wait.
extension MountTests {
    @Suite("command") struct Command {
        @Test("wqfs --help exits 0 and explains the layout and options")
        func help() throws {
            let out = try run(try Products.path("wqfs"), ["--help"], timeout: 10)
            #expect(out.status == 0, "\(out)")
            let text = out.stdout + out.stderr
            for needle in ["usage: wqfs MOUNTPOINT", "mount -t fuse.wqfs", "default_size=N", "max_size=N",
                           "max_filters=N", "max_watches=N", "max_queues=N", "max_sources=N", "max_slots=N",
                           "allow_other", "SIGTERM", "end of file"] {
                #expect(text.contains(needle), "--help lacks \(needle)")
            }
            let bad = try run(try Products.path("wqfs"), ["/nonexistent", "-o", "default_size=0"], timeout: 10)
            #expect(bad.status != 0 && bad.stderr.contains("default_size"), "\(bad)")
        }

        // mount(8) runs helpers with a fixed PATH (see README), so the helper is run
        // as mount(8) would run it, with the build directory on PATH: mount.fuse3
        // looks `wqfs` up there.
        @Test("mount.fuse3 wqfs DIR -t fuse.wqfs (what mount -t fuse.wqfs runs) mounts with -o default_size=8")
        func mountHelper() throws {
            try withHelperMount("mount.fuse3 wqfs \"$D\" -t fuse.wqfs -o default_size=8") { dir in
                let out = try run("/bin/sh", ["-c", "touch \"$0\"/queues/q && cat \"$0\"/queues/q.size && grep \" $0 \" /proc/mounts", dir])
                #expect(out.stdout.hasPrefix("8\nwqfs \(dir) fuse.wqfs "), "\(out)")
                #expect(out.stdout.contains("default_permissions"), "\(out)")
            }
        }

        @Test("mount -t fuse 'PATH/wqfs#wqfs' DIR -o default_size=8 mounts through mount(8)")
        func mountCommand() throws {
            try withHelperMount("mount -t fuse \"$P/wqfs#wqfs\" \"$D\" -o default_size=8") { dir in
                let out = try run("/bin/sh", ["-c", "touch \"$0\"/queues/q && cat \"$0\"/queues/q.size", dir])
                #expect(out.stdout == "8\n", "\(out)")
            }
        }

        // FUSE-NOTES: a child Foundation.Process starts from a test thread inherits
        // SIGINT, SIGTERM and SIGHUP blocked; the server must unblock them itself.
        @Test("a server started by Foundation.Process (signals possibly blocked) still stops on SIGTERM")
        func sigtermFromFoundationProcess() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-proc-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try Products.path("wqfs"))
            process.arguments = [dir, "-f"]
            process.standardInput = FileHandle(forReadingAtPath: "/dev/null")
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            defer {
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                Mount.forceUnmount(dir)
                try? FileManager.default.removeItem(atPath: dir)
            }
            try process.run()
            var deadline = Date(timeIntervalSinceNow: 10)
            while !Mount.isMounted(dir) && process.isRunning && Date() < deadline { usleep(10_000) }
            try #require(Mount.isMounted(dir), "wqfs did not mount \(dir)")
            kill(process.processIdentifier, SIGTERM)
            deadline = Date(timeIntervalSinceNow: 5)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            #expect(!process.isRunning, "SIGTERM did not stop a server started by Foundation.Process")
            if !process.isRunning { #expect(process.terminationStatus == 0) }
            #expect(!Mount.isMounted(dir))
        }

        @Test("SIGTERM with blocked readers: they get end of file, the server exits 0, the mount is gone")
        func sigtermWithBlockedReaders() throws {
            try withMount { m throws in
                let out = try m.out("""
                    touch queues/a queues/b
                    for q in a a b; do timeout -s KILL 20 $C read queues/$q 4096 >> $T/r & done
                    timeout -s KILL 20 dd if=queues/b of=$T/dd bs=4096 count=1 2>/dev/null &
                    waitfor 'grep -qx "waiting 2" queues/a.status && grep -qx "waiting 2" queues/b.status' || exit 1
                    kill -TERM \(m.serverPID)
                    wait
                    cat $T/r; stat -c %s $T/dd
                    """)
                #expect(out == "eof\neof\neof\n0\n")
                #expect(m.waitForExit(timeout: 5) == 0, "server log:\n\(m.serverLog)")
                #expect(!Mount.isMounted(m.path))
            }
        }
    }
}

/// The repository this test file is in: mount-scripts/, docs/man/, README.md.
private let repository = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Whether `name` is an executable in a directory of PATH.
private func onPath(_ name: String) -> Bool {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
}

/// Runs `mount-scripts/install --prefix /usr --build-dir PRODUCTS` with DESTDIR set
/// to a fresh temporary directory, hands `body` that directory and the outcome, and
/// always removes it.
private func withStagedInstall(_ body: (_ destdir: String, _ outcome: Outcome) throws -> Void) throws {
    let destdir = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-install-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: destdir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: destdir) }
    let outcome = try run("/bin/sh", [repository + "/mount-scripts/install", "--prefix", "/usr",
                                      "--build-dir", try productsDirectory()],
                          environment: ["DESTDIR": destdir], timeout: 60)
    try #require(outcome.status == 0, "mount-scripts/install: \(outcome)")
    try body(destdir, outcome)
}

// DESIGN §9: mount-scripts/install, staged with DESTDIR, and what it installs. No
// mount needed, so this suite is not under MountTests (the tests above are).
@Suite("install")
struct CommandTests {
    @Test("install with DESTDIR puts every file in place with its mode, and the unit runs PREFIX/bin/wqfs")
    func stagedFiles() throws {
        try withStagedInstall { destdir, outcome in
            let expected: [(path: String, mode: mode_t)] = [
                ("/usr/bin/wqfs", 0o755), ("/usr/bin/wqcat", 0o755), ("/usr/lib/libwqfs-compat.so", 0o755),
                ("/usr/share/man/man8/wqfs.8", 0o644), ("/usr/share/man/man1/wqcat.1", 0o644),
                ("/usr/lib/systemd/system/wqfs.service", 0o644), ("/usr/share/doc/wqfs/README.md", 0o644),
            ]
            for (path, mode) in expected {
                var info = stat()
                guard stat(destdir + path, &info) == 0 else {
                    Issue.record("\(path) was not installed: \(outcome)")
                    continue
                }
                #expect(info.st_mode & 0o7777 == mode, "\(path) has mode \(String(info.st_mode & 0o7777, radix: 8))")
            }
            #expect(Set(outcome.lines) == Set(expected.map { destdir + $0.path }), "it prints each installed path: \(outcome)")
            let unit = try String(contentsOfFile: destdir + "/usr/lib/systemd/system/wqfs.service", encoding: .utf8)
            let execStart = unit.split(separator: "\n").filter { $0.hasPrefix("ExecStart=") }
            #expect(execStart == ["ExecStart=/usr/bin/wqfs /run/wqfs -f -o allow_other"], "\(unit)")
            #expect(unit.contains("Documentation=file:///usr/share/doc/wqfs/README.md"), "\(unit)")
        }
    }

    @Test("the installed wqfs and wqcat print the version constant")
    func stagedVersions() throws {
        try withStagedInstall { destdir, _ in
            let wqfs = try run(destdir + "/usr/bin/wqfs", ["--version"], timeout: 10)
            #expect(wqfs.status == 0, "\(wqfs)")
            #expect(wqfs.lines.first == "wqfs \(WQFSVersion.string)", "\(wqfs)")
            #expect(wqfs.stdout.contains("FUSE"), "libfuse's versions follow: \(wqfs)")
            let wqcat = try run(destdir + "/usr/bin/wqcat", ["--version"], timeout: 10)
            #expect(wqcat.status == 0, "\(wqcat)")
            #expect(wqcat.stdout == "wqcat \(WQFSVersion.string)\n", "\(wqcat)")
        }
    }

    @Test("man -l renders the installed wqfs(8), rules of assembled writes included",
          .enabled(if: onPath("man"), "man is not installed (apt-get install man-db); skipped"))
    func stagedManualPage() throws {
        try withStagedInstall { destdir, _ in
            let man = try run("/bin/sh", ["-c", "exec man -l \"$0\"", destdir + "/usr/share/man/man8/wqfs.8"],
                              environment: ["MANPAGER": "cat", "MANWIDTH": "80"], timeout: 30)
            #expect(man.status == 0, "\(man)")
            #expect(man.stdout.contains("HOW WRITES ARE ASSEMBLED"), "\(man)")
        }
    }

    // As nobody, with a prefix only root may write: refused before anything is
    // touched. A temporary prefix, so nothing real is installed even if it were not;
    // a copy of the script beside it, which nobody can read wherever the checkout is.
    @Test("install into an unwritable prefix without DESTDIR fails with status 1 and installs nothing",
          .enabled(if: getuid() == 0 && onPath("setpriv"), "needs root to run the script as nobody; skipped"))
    func unwritablePrefix() throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("wqfs-unwritable-\(UUID().uuidString)").path
        let prefix = scratch + "/prefix", script = scratch + "/install"
        try FileManager.default.createDirectory(atPath: prefix, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        chmod(scratch, 0o755)
        try FileManager.default.copyItem(atPath: repository + "/mount-scripts/install", toPath: script)
        chmod(script, 0o755)
        let outcome = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                   "/usr/bin/env", "-u", "DESTDIR", "/bin/sh", script,
                                                   "--prefix", prefix, "--build-dir", try productsDirectory()],
                              timeout: 30)
        #expect(outcome.status == 1, "\(outcome)")
        #expect(outcome.stderr.contains("cannot write to \(prefix)"), "\(outcome)")
        #expect(outcome.stdout.isEmpty, "\(outcome)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: prefix)) == [], "it installed something")
    }
}
