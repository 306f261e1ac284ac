import Foundation
import SystemSources
import Testing
import WQCatKit
import WatchQueueCore

/// What a finished `wqcat` run left behind.
private struct Outcome {
    var status: Int32
    var stdout: [UInt8]
    var stderr: String
    var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// The `wqcat` executable SwiftPM built into the same products directory as this test
/// bundle (`swift build` builds it; `swift test` alone does not). `WQCAT` overrides.
private func wqcatExecutable() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["WQCAT"] { return URL(fileURLWithPath: path) }
    let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let candidates = [runner, URL(fileURLWithPath: CommandLine.arguments[0])].map {
        $0.deletingLastPathComponent().appendingPathComponent("wqcat")
    }
    guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw WQCatNotBuilt(searched: candidates.map(\.path))
    }
    return found
}

private struct WQCatNotBuilt: Error, CustomStringConvertible {
    var searched: [String]
    var description: String { "no wqcat executable at \(searched); run `swift build` first (or set WQCAT)" }
}

/// A fresh temporary directory, removed by the caller.
private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("wqcat-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Runs `wqcat arguments`. Standard input is `stdin` from a file, or, with `feed`, a
/// pipe that `feed` writes to and that is closed after it returns unless `feed`
/// keeps it (the run then has to end by itself). A run past `timeout` is killed and
/// reported as status -1.
private func runWQCat(_ arguments: [String], stdin: [UInt8] = [], in directory: URL? = nil,
                      timeout: TimeInterval = 10, closeStdin: Bool = true,
                      feed: ((FileHandle) throws -> Void)? = nil) throws -> Outcome {
    let scratch = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("out"), errURL = scratch.appendingPathComponent("err")
    try Data().write(to: outURL)
    try Data().write(to: errURL)
    let process = Process()
    process.executableURL = try wqcatExecutable()
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    process.standardOutput = try FileHandle(forWritingTo: outURL)
    process.standardError = try FileHandle(forWritingTo: errURL)
    let pipe = Pipe()
    if feed != nil {
        process.standardInput = pipe
    } else {
        let inURL = scratch.appendingPathComponent("in")
        try Data(stdin).write(to: inURL)
        process.standardInput = try FileHandle(forReadingFrom: inURL)
    }
    try process.run()
    if let feed {
        try feed(pipe.fileHandleForWriting)
        if closeStdin { try pipe.fileHandleForWriting.close() }
    }
    let deadline = Date(timeIntervalSinceNow: timeout)
    while process.isRunning && Date() < deadline { usleep(5_000) }
    var status = Int32(-1)
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
    } else {
        status = process.terminationStatus
    }
    return Outcome(status: status, stdout: Array(try Data(contentsOf: outURL)),
                   stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
}

@Suite struct Executable {
    @Test func goldenStreamOnStandardInput() throws {
        let run = try runWQCat([], stdin: Fixtures.goldenStream)
        #expect(run.status == 0)
        #expect(run.text == Fixtures.goldenText)
        #expect(run.stderr == "")
    }

    @Test func zeroLengthIsMalformed() throws {
        let run = try runWQCat([], stdin: Fixtures.kernelLoss + [0, 0, 0, 0, 0, 0, 0, 0] + Fixtures.kernelLoss)
        #expect(run.status == 2)
        #expect(run.text == "-- LOSS --\n")
        #expect(run.stderr == "wqcat: standard input: malformed input: record at byte 8 has length 0 (a record is at least 8 bytes)\n")
    }

    @Test func truncatedRecordIsMalformed() throws {
        let run = try runWQCat(["--drain"], stdin: Fixtures.goldenStream + Fixtures.kernelRemoval.prefix(15))
        #expect(run.status == 2)
        #expect(run.text == Fixtures.goldenText)
        #expect(run.stderr.hasPrefix("wqcat: standard input: malformed input: truncated record at byte \(Fixtures.goldenStream.count):"))
    }

    @Test func recordSplitAcrossPipeWritesIsReassembled() throws {
        let link = Records.key(.linked, keyID: 7, aux: 8)
        let run = try runWQCat([]) { stdin in
            for piece in [Array(link.prefix(3)), Array(link[3 ..< 11]), Array(link.dropFirst(11)) + Records.loss] {
                try stdin.write(contentsOf: piece)
                usleep(20_000)
            }
        }
        #expect(run.status == 0)
        #expect(run.text == "7 link 8\n-- LOSS --\n")
    }

    @Test func countExitsWithoutWaitingForTheEnd() throws {
        // The pipe stays open: only --count can end this run before the timeout.
        var writer: FileHandle?
        let run = try runWQCat(["--count", "2"], closeStdin: false) { stdin in
            writer = stdin
            try stdin.write(contentsOf: Records.key(.updated, keyID: 1, aux: 0) + Records.key(.revoked, keyID: 1, aux: 0)
                + Records.key(.invalidated, keyID: 1, aux: 0))
        }
        try writer?.close()
        #expect(run.status == 0)
        #expect(run.text == "1 upd\n1 rev\n")
    }

    @Test func rawRoundTrips() throws {
        let run = try runWQCat(["--raw"], stdin: Fixtures.goldenStream)
        #expect(run.status == 0)
        #expect(run.stdout == Fixtures.goldenStream)
    }

    @Test func jsonWithTimestamps() throws {
        let run = try runWQCat(["--json", "-t"], stdin: Records.key(.cleared, keyID: 3, aux: 0))
        #expect(run.status == 0)
        let pattern = #/\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z","kind":"key","type":1,"subtype":4,"id":0,"len":16,"info":16,"typeinfo":0,"event":"clr","key_id":3,"aux":0,"data":"0300000000000000"\}\n/#
        #expect(run.text.wholeMatch(of: pattern) != nil, "\(run.text)")
    }

    @Test func severalFilesArePrefixedWithTheirNames() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(Records.key(.linked, keyID: 1, aux: 2) + Records.loss).write(to: directory.appendingPathComponent("alpha"))
        try Data(Fixtures.kernelRemoval).write(to: directory.appendingPathComponent("beta"))
        for mode in [[], ["--drain"]] {
            let run = try runWQCat(mode + ["alpha", "beta"], in: directory)
            #expect(run.status == 0)
            #expect(run.text == "alpha: 1 link 2\nalpha: -- LOSS --\nbeta: 305419896 gc\n")
        }
    }

    @Test func severalInputsArePolledNotReadInTurn() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = directory.appendingPathComponent("first"), second = directory.appendingPathComponent("second")
        #expect(mkfifo(first.path, 0o600) == 0 && mkfifo(second.path, 0o600) == 0)
        let run = try runWQCat([first.path, second.path]) { _ in
            // Data arrives on the second input first; a reader stuck on the first would stall.
            let secondWriter = try openWriter(second)
            try secondWriter.write(contentsOf: Records.key(.updated, keyID: 2, aux: 0))
            usleep(100_000)
            let firstWriter = try openWriter(first)
            try firstWriter.write(contentsOf: Records.key(.updated, keyID: 1, aux: 0))
            try firstWriter.close()
            try secondWriter.close()
        }
        #expect(run.status == 0)
        #expect(run.text == "second: 2 upd\nfirst: 1 upd\n")
    }

    @Test func systemRecordsOnStandardInputAndBesideATable() throws {
        let capture = MountNotification(.newMount, flags: .inSubtree, triggeredOn: 28, auxiliaryMount: 513).bytes
            + ProcessNotification(timestampNS: 2_333_256_691_000, pid: 9930, tgid: 9930,
                                  event: .exit(ProcessExit(waitStatus: 0x300, parentPID: 1, parentTGID: 1))).bytes
            + DeviceNotification(action: .change, seqnum: 1745, major: 1, minor: 3, subsystem: Array("mem".utf8),
                                 devpath: Array("/devices/virtual/mem/null".utf8)).bytes
        let lines = ["[2333.256691] exit 9930 code=3", "KERNEL[1745] change /devices/virtual/mem/null (mem) dev=1:3"]
            .map { $0 + "\n" }.joined()
        let stdin = try runWQCat([], stdin: capture)
        #expect(stdin.status == 0)
        #expect(stdin.text == "mount ? ? ? ? id=513 parent=28 in-subtree\n" + lines)

        // The same bytes at MOUNT/queues/NAME: the names come from MOUNT/sources/mounts/table.
        let mount = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: mount) }
        let queues = mount.appendingPathComponent("queues"), mounts = mount.appendingPathComponent("sources/mounts")
        try FileManager.default.createDirectory(at: queues, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: mounts, withIntermediateDirectories: true)
        try Data(capture).write(to: queues.appendingPathComponent("q"))
        try Data("28 1 / ext4 /dev/vda1 rw\n513 28 /tmp/x\\040y tmpfs t rw,relatime\n".utf8)
            .write(to: mounts.appendingPathComponent("table"))
        let named = try runWQCat(["queues/q"], in: mount)
        #expect(named.status == 0)
        #expect(named.text == "mount /tmp/x y t tmpfs rw,relatime id=513 parent=28 in-subtree\n"
            + lines)
    }

    @Test func missingFileFailsBeforeReadingAnything() throws {
        let run = try runWQCat(["-", "/nonexistent/queue"], stdin: Records.loss)
        #expect(run.status == 1)
        #expect(run.text == "")
        #expect(run.stderr == "wqcat: /nonexistent/queue: No such file or directory\n")
    }

    @Test(arguments: [["--json", "--raw"], ["--raw", "-t"], ["--follow", "--drain"], ["--count", "0"], ["-", "-"], ["--bogus"]])
    func usageErrorsExitOne(arguments: [String]) throws {
        let run = try runWQCat(arguments)
        #expect(run.status == 1)
        #expect(run.text == "")
        #expect(run.stderr.contains("Usage: wqcat"))
    }

    @Test func helpDocumentsExitStatuses() throws {
        let run = try runWQCat(["--help"])
        #expect(run.status == 0)
        #expect(run.text.contains("EXIT STATUS"))
        #expect(run.text.contains("--drain"))
    }
}

/// Opens a FIFO for writing once its reader (the `wqcat` under test) has opened it.
private func openWriter(_ fifo: URL) throws -> FileHandle {
    let deadline = Date(timeIntervalSinceNow: 5)
    while true {
        let fd = open(fifo.path, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { return FileHandle(fileDescriptor: fd, closeOnDealloc: true) }
        guard errno == ENXIO, Date() < deadline else { throw CocoaError(.fileWriteUnknown) }
        usleep(5_000)
    }
}
