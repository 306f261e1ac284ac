import ArgumentParser
import WQCatKit
import WatchQueueCore
import Glibc

/// The exit statuses `wqcat` documents in its help.
enum ExitStatus {
    /// Every input reached its end (or was drained), or `--count` records were printed.
    static let success: Int32 = 0
    /// Bad usage, or a file that cannot be opened, read or written.
    static let failure: Int32 = 1
    /// An input is not a well-formed record stream.
    static let malformed: Int32 = 2
}

/// A reason to stop, with the message for standard error and the exit status.
struct Failure: Error {
    var message: String
    var status: Int32
}

/// `wqcat [OPTIONS] [QUEUE…]`: prints watch-queue records as text or JSON lines.
struct WQCat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wqcat",
        abstract: "Print the notification records of watch queues, one line per record.",
        discussion: """
            Reads each QUEUE (a wqfs queue file, or any file or pipe of packed records; \
            - or no QUEUE at all means standard input) and prints one line per record \
            as soon as it is read. Key records print as keyutils' `keyctl watch` does:
              123 inst | upd | link 456 | unlk 456 | clr | rev | inv | attr
            a loss record as `-- LOSS --`, a removal record as `<object id> gc`, and \
            every other record as a generic line:
              type=4660 subtype=3 id=2 len=12 info=0x0001020c typeinfo=0x0001 data=deadbeef
            (watch id, raw info word, its bits 16-31, payload in hex). A key record that \
            is not exactly 16 bytes or has an unknown subtype gets the generic line. \
            With several inputs every line starts with `QUEUE: ` (the file's name); \
            with --timestamps, before that, the UTC time the record was read.

            Records of the system sources print like findmnt --poll (mount, umount, \
            expire, remount, move-from, move-to), forkstat and udevadm monitor:
              mount TARGET SOURCE FSTYPE OPTIONS id=N parent=M in-subtree
              remount TARGET SOURCE FSTYPE OPTIONS ro|rw|(attributes) id=N
              [12345.678901] exit 4242 code=3
              KERNEL[1514] change /devices/virtual/mem/null (mem) dev=1:3
            Mount names come from MOUNT/sources/mounts/table when QUEUE is \
            MOUNT/queues/NAME; elsewhere they print as `? ? ? ?`. A system record of \
            the wrong length gets the generic line; --json gives every field.

            By default wqcat waits for more records, like cat on the queue, and stops \
            when every input has ended (a removed queue reads as end of file).

            EXIT STATUS
              0  every input ended or was drained, or --count records were printed
              1  bad usage, or an input that cannot be opened or read
              2  malformed input: a length under 8, or a record cut short by the end
                 of the input (the records before it are printed first)
            """,
        version: "wqcat \(WQFSVersion.string)"
    )

    @Flag(name: [.short, .long], help: "Print one JSON object per record.")
    var json = false

    @Flag(name: [.short, .long], help: "Copy the records' bytes unchanged (still checked).")
    var raw = false

    @Flag(name: [.short, .long], help: "Start each line with the UTC time it was read (ISO 8601, microseconds).")
    var timestamps = false

    @Flag(name: [.short, .long], help: "Keep waiting for records (the default; accepted for clarity).")
    var follow = false

    @Flag(name: [.short, .long], help: "Read what is queued now, without waiting, then exit.")
    var drain = false

    @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Exit after printing N records.", valueName: "N"))
    var count: Int?

    @Argument(help: ArgumentHelp("Queue files to read; - is standard input (the default).", valueName: "QUEUE"))
    var queues: [String] = []

    func validate() throws {
        if json && raw { throw ValidationError("--json and --raw cannot be combined.") }
        if raw && timestamps { throw ValidationError("--timestamps needs text or JSON output, not --raw.") }
        if follow && drain { throw ValidationError("--follow and --drain cannot be combined.") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1.") }
        if queues.filter({ $0 == "-" }).count > 1 {
            throw ValidationError("Standard input (-) can be named only once.")
        }
    }

    func run() throws {
        let arguments = queues.isEmpty ? ["-"] : queues
        let several = arguments.count > 1
        let labels = inputLabels(for: arguments)
        // Several inputs are polled, and a queue that polls readable may still be
        // emptied by a competing reader first: non-blocking reads keep that from
        // stalling the others. A lone queue just blocks in read(), like cat.
        let nonBlocking = drain || several
        var inputs: [Input] = []
        defer { for input in inputs where !input.isStandardInput { close(input.fd) } }
        for (argument, label) in zip(arguments, labels) {
            inputs.append(try Input(argument: argument, label: several ? label : nil, nonBlocking: nonBlocking))
        }
        let style: OutputStyle = raw ? .raw : json ? .json : .text
        var session = Session(inputs: inputs, formatter: RecordFormatter(style: style),
                              timestamps: timestamps, remaining: count)
        if drain {
            try session.drainAll()
        } else {
            try session.follow()
        }
    }

    /// Parses the command line, runs, and exits with a documented status (ArgumentParser
    /// alone would use 64 for usage errors).
    static func runAndExit() -> Never {
        do {
            var command = try parseAsRoot()
            try command.run()
            Glibc.exit(ExitStatus.success)
        } catch let failure as Failure {
            printError("wqcat: \(failure.message)")
            Glibc.exit(failure.status)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))  // --help
                Glibc.exit(ExitStatus.success)
            }
            printError(fullMessage(for: error))
            Glibc.exit(ExitStatus.failure)
        }
    }
}

/// Writes `message` and a newline to standard error.
func printError(_ message: String) {
    var bytes = Array(message.utf8)
    bytes.append(UInt8(ascii: "\n"))
    try? writeAll(bytes, to: STDERR_FILENO)
}

/// Writes every byte, retrying after signals and short writes.
func writeAll(_ bytes: [UInt8], to fd: Int32) throws(Failure) {
    var done = 0
    while done < bytes.count {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + done }, $0.count - done) }
        if written < 0 {
            if errno == EINTR { continue }
            throw Failure(message: "write error: \(systemError())", status: ExitStatus.failure)
        }
        done += written
    }
}

/// The current `errno` as text.
func systemError() -> String {
    String(cString: strerror(errno))
}
