// wqfs: mount watch queues as a FUSE filesystem. The work is in WatchQueueFS; this
// file only strings the command line, the session and the teardown together.
import FuseBinding
import SystemSources
import WatchQueueCore
import WatchQueueFS
#if canImport(Glibc)
import Glibc
#endif

/// Writes `text` and a newline straight to `fd`, bypassing stdio's buffer.
func writeLine(_ text: String, to fd: Int32) {
    let line = text + "\n"
    _ = line.utf8.withContiguousStorageIfAvailable { write(fd, $0.baseAddress, $0.count) }
}

func fail(_ message: String) -> Never {
    writeLine("wqfs: \(message)", to: 2)
    exit(1)
}

/// Parses the command line, mounts, serves until unmount or a signal, tears down.
func serve() -> Never {
    var arguments = FuseArguments(MountOptions.droppingMountHelperDevice(CommandLine.arguments))
    let limits: Limits
    let sources: SystemSources.Configuration
    let command: CommandLineOptions
    do {
        let options = try arguments.extractOptions(named: MountOptions.names)
        limits = try MountOptions.limits(from: options)
        sources = try MountOptions.systemSources(from: options)
        command = try arguments.parseCommandLine()
    } catch let error as WQError {
        fail(error.reason)
    } catch {
        fail("\(error) (try --help)")
    }
    if command.showHelp {
        print(MountOptions.usage)
        FuseArguments.printHelp()
        exit(0)
    }
    if command.showVersion {
        // wqfs's own release first, then libfuse's versions. Unbuffered, because
        // libfuse has fusermount3, a child writing straight to the descriptor, print
        // its version: a buffered line would come out after that.
        writeLine("wqfs \(WQFSVersion.string)", to: 1)
        FuseArguments.printVersion()
        exit(0)
    }
    guard let mountpoint = command.mountpoint else { fail("no mount point given (try --help)") }
    for option in MountOptions.implied {
        do { try arguments.append(option) } catch { fail("\(error)") }
    }

    let engine = Engine(limits: limits, reservedSourceNames: Set(SystemSources.names))
    let system = SystemSources(engine: engine, configuration: sources)
    let filesystem = WatchQueueFileSystem(engine: engine, owner: Credentials(uid: getuid(), gid: getgid()), system: system)
    let outcome: LoopOutcome
    do {
        let session = try FuseSession(arguments: arguments, filesystem: filesystem)
        try session.mount(at: mountpoint)
        try FuseSession.daemonize(foreground: command.foreground || command.debug)
        try session.installSignalHandlers()
        // After daemonizing: a thread does not survive the fork.
        try filesystem.startSystemSources()
        outcome = session.run(multiThreaded: !command.singleThreaded,
                              maxIdleThreads: command.maxIdleThreads ?? 4,
                              maxThreads: command.maxThreads)
        // The channel is still open: answer parked reads before it goes.
        filesystem.shutdown()
        session.removeSignalHandlers()
        session.unmount()
    } catch {
        fail("\(error)")
    }
    exit(outcome.isSuccess ? 0 : 1)
}

serve()
