import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// A failure reported by libfuse while setting up, mounting or parsing.
public struct FuseError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An argv-style argument list in libfuse's own form (`struct fuse_args`),
/// built from strdup'd strings and freed with `fuse_opt_free_args`.
///
/// Typical executable flow:
/// 1. `var args = FuseArguments(CommandLine.arguments)`
/// 2. `let mine = try args.extractOptions(named: ["default_size", …])` — takes
///    the filesystem's own `-o` options out (through `fuse_opt_parse`),
///    leaving FUSE's ones;
/// 3. `let cmd = try args.parseCommandLine()` — `fuse_parse_cmdline`: mount
///    point, `-f`, `-d`, `-s`, `-h`, `-V`, …, removed from the list;
/// 4. `FuseSession(arguments: args, filesystem: fs)` — `fuse_session_new`
///    consumes the remaining `-o` options (unknown ones are an error).
public struct FuseArguments: ~Copyable {
    var raw: fuse_args

    /// Build from `arguments`; `arguments[0]` is the program name (one is
    /// supplied if the list is empty).
    public init(_ arguments: [String]) {
        let list = arguments.isEmpty ? ["fuse"] : arguments
        // fuse_opt_free_args releases the strings and the array with free():
        // both must come from malloc.
        let slot = MemoryLayout<UnsafeMutablePointer<CChar>?>.stride
        guard let memory = calloc(list.count + 1, slot) else {
            fatalError("FuseArguments: out of memory")
        }
        let heap = memory.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: list.count + 1)
        for (i, arg) in list.enumerated() { heap[i] = strdup(arg) }
        raw = fuse_args(argc: Int32(list.count), argv: heap, allocated: 1)
    }

    deinit {
        var args = raw
        fuse_opt_free_args(&args)
    }

    /// The current list, argv[0] included.
    public var arguments: [String] {
        (0..<Int(raw.argc)).map { i in raw.argv[i].map { String(cString: $0) } ?? "" }
    }

    /// Append one argument (e.g. `"-o"`, `"fsname=wqfs"`).
    public mutating func append(_ argument: String) throws(FuseError) {
        if fuse_opt_add_arg(&raw, argument) != 0 { throw FuseError("out of memory adding \(argument)") }
    }

    /// Remove the mount options (`-o a,b=c` and `-oa`) whose name is in
    /// `names` and return them in order as (name, value) pairs — value `nil`
    /// for a bare flag. Other options and arguments are kept as they were.
    /// Uses `fuse_opt_parse`, so comma splitting and `\,` escapes follow libfuse.
    public mutating func extractOptions(named names: Set<String>) throws(FuseError) -> [(name: String, value: String?)] {
        let collector = OptionCollector(names: names)
        let data = Unmanaged.passRetained(collector)
        defer { data.release() }
        let rc = fuse_opt_parse(&raw, data.toOpaque(), nil) { data, arg, key, _ in
            // key -1 is FUSE_OPT_KEY_OPT: one option (a -o sub-option, or a
            // dash option). Returning 1 keeps it, 0 drops it.
            guard key == -1, let data, let arg else { return 1 }
            let collector = Unmanaged<OptionCollector>.fromOpaque(data).takeUnretainedValue()
            return collector.offer(String(cString: arg)) ? 0 : 1
        }
        if rc != 0 { throw FuseError("cannot parse options") }
        return collector.found
    }

    /// Run `fuse_parse_cmdline`: removes the options it knows and the mount
    /// point from the list and returns them.
    public mutating func parseCommandLine() throws(FuseError) -> CommandLineOptions {
        var opts = fuse_cmdline_opts()
        if fuse_parse_cmdline(&raw, &opts) != 0 {
            throw FuseError("invalid command line")
        }
        defer { free(opts.mountpoint) }
        return CommandLineOptions(opts)
    }

    /// Print libfuse's help for the generic command-line and mount options.
    public static func printHelp() {
        fuse_cmdline_help()
        fuse_lowlevel_help()
    }

    /// Print the libfuse and protocol versions.
    public static func printVersion() {
        fuse_lowlevel_version()
    }
}

/// What `fuse_parse_cmdline` found on the command line.
public struct CommandLineOptions: Sendable, Equatable {
    /// The mount point (made absolute by libfuse), if one was given.
    public var mountpoint: String?
    /// `-f`: stay in the foreground.
    public var foreground: Bool
    /// `-d` / `-o debug`: libfuse logs every request (implies foreground).
    public var debug: Bool
    /// `-s`: single-threaded loop.
    public var singleThreaded: Bool
    /// `-h` / `--help`.
    public var showHelp: Bool
    /// `-V` / `--version`.
    public var showVersion: Bool
    /// `-o clone_fd`.
    public var cloneFD: Bool
    /// `-o max_idle_threads=N`; `nil` when not given (libfuse's default).
    public var maxIdleThreads: Int?
    /// `-o max_threads=N`.
    public var maxThreads: Int

    init(_ o: fuse_cmdline_opts) {
        mountpoint = o.mountpoint.map { String(cString: $0) }
        foreground = o.foreground != 0
        debug = o.debug != 0
        singleThreaded = o.singlethread != 0
        showHelp = o.show_help != 0
        showVersion = o.show_version != 0
        cloneFD = o.clone_fd != 0
        maxIdleThreads = o.max_idle_threads == UInt32.max ? nil : Int(o.max_idle_threads)
        maxThreads = Int(o.max_threads)
    }
}

/// State for ``FuseArguments/extractOptions(named:)``'s C callback; used on
/// one thread only, during the call.
private final class OptionCollector {
    let names: Set<String>
    var found: [(name: String, value: String?)] = []

    init(names: Set<String>) { self.names = names }

    /// Record `option` if its name is wanted.
    func offer(_ option: String) -> Bool {
        let name: Substring
        let value: String?
        if let eq = option.firstIndex(of: "=") {
            name = option[..<eq]
            value = String(option[option.index(after: eq)...])
        } else {
            name = option[...]
            value = nil
        }
        guard names.contains(String(name)) else { return false }
        found.append((String(name), value))
        return true
    }
}
