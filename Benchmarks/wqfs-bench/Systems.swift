// The three systems under test and how each is set up for a test: wqfs through a
// real mount, the C floor through its mount, and a plain pipe.
#if canImport(Glibc)
import Glibc
#endif
import WatchQueueCore

enum SystemKind: String, CaseIterable {
    case wqfs
    case floor = "C floor"
    case pipe
}

/// The records every system carries, byte for byte.
enum Payload {
    /// One 16-byte post.bin record (type 256, subtype 1, u64 payload).
    static let record = CoreBench.records(1)
    /// 4 KiB and 64 KiB of records.
    static let batch4K = CoreBench.records(256)
    static let batch64K = CoreBench.records(4096)
    /// One `post` line: subtype 1 and a u64, a 16-byte record once posted.
    static let line = "1 u64=1234567\n"
    static let text100 = Array(String(repeating: line, count: 100).utf8)
}

/// A running wqfs mount.
final class WQFS {
    let server: MountedServer
    var root: String { server.mountpoint }
    private var counter = 0

    init(binary: String, mountpoint: String, options: String) {
        server = MountedServer(name: "wqfs", mountpoint: mountpoint, argv: [binary, mountpoint, "-f", "-o", options])
    }

    func uniqueName(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)\(counter)"
    }

    func createQueue(_ name: String, size: Int? = nil) {
        createFile("\(root)/queues/\(name)")
        if let size { writeText("\(root)/queues/\(name).size", "\(size)\n") }
    }

    func createSource(_ name: String) {
        if mkdir("\(root)/sources/\(name)", 0o755) != 0 { fail("mkdir sources/\(name): \(String(cString: strerror(errno)))") }
    }

    func watch(source: String, queues: [String]) {
        // One write per 2000 lines keeps each write well under FUSE's 128 KiB.
        var index = 0
        while index < queues.count {
            let chunk = queues[index..<min(queues.count, index + 2000)]
            writeText("\(root)/sources/\(source)/watches", chunk.map { "\($0) 1\n" }.joined())
            index += chunk.count
        }
    }

    func removeQueue(_ name: String) {
        if unlink("\(root)/queues/\(name)") != 0 { fail("rm queues/\(name): \(String(cString: strerror(errno)))") }
    }

    func removeSource(_ name: String) {
        if rmdir("\(root)/sources/\(name)") != 0 { fail("rmdir sources/\(name): \(String(cString: strerror(errno)))") }
    }

    /// A source watched by `queues` queues (the first sized `size`, the others left
    /// at the default and never read); the endpoints write `post.bin` (or `post`)
    /// and read the first queue, or every queue when `readAll`.
    func setUp(queues: Int, size: Int, text: Bool = false, readAll: Bool = false) -> (Endpoints, () -> Void) {
        let source = uniqueName("src")
        let names = (0..<queues).map { _ in uniqueName("q") }
        for (index, name) in names.enumerated() {
            createQueue(name, size: index == 0 || readAll ? size : nil)
        }
        createSource(source)
        watch(source: source, queues: names)
        let writer = openOrFail("\(root)/sources/\(source)/\(text ? "post" : "post.bin")", O_WRONLY)
        let readers = (readAll ? names : [names[0]]).map { openOrFail("\(root)/queues/\($0)", O_RDONLY) }
        let endpoints = Endpoints(writers: [writer], readers: readers)
        return (endpoints, {
            endpoints.close()
            self.removeSource(source)
            for name in names { self.removeQueue(name) }
        })
    }
}

/// A running C floor mount with `queues` queue files; with `relay` (devices,
/// processes) it also relays that kernel mechanism into them as wqfs's event
/// thread does (cfloor.c's C relay).
final class CFloor {
    let server: MountedServer
    let queues: Int
    let binary: String

    init(binary: String, mountpoint: String, queues: Int, relay: String? = nil) {
        self.queues = queues
        self.binary = binary
        server = MountedServer(name: "cfloor", mountpoint: mountpoint,
                               argv: [binary, mountpoint, "\(queues)"] + (relay.map { [$0] } ?? []))
    }

    func endpoints(readAll: Bool = false) -> Endpoints {
        let root = server.mountpoint
        let readers = (0..<(readAll ? queues : 1)).map { openOrFail("\(root)/q\($0)", O_RDONLY) }
        return Endpoints(writers: [openOrFail("\(root)/post", O_WRONLY)], readers: readers)
    }

    /// Compiles cfloor.c into `directory`; returns the binary's path.
    static func build(source: String, directory: String) -> String {
        let output = "\(directory)/cfloor"
        let flags = shellOutput("pkg-config --cflags --libs fuse3")
        if flags.isEmpty { fail("pkg-config knows no fuse3 (install libfuse3-dev)") }
        let argv = ["cc", "-O2", "-I", projectInclude(forBenchmarkSource: source), "-o", output, source]
            + flags.split(separator: " ").map(String.init)
        if run(argv) != 0 { fail("cannot compile \(source)") }
        return output
    }
}

enum Pipes {
    /// F_SETPIPE_SZ (F_LINUX_SPECIFIC_BASE + 7), hidden behind _GNU_SOURCE.
    static let setPipeSize: Int32 = 1031

    /// `count` pipes of 1 MiB; writers[i] feeds readers[i].
    static func endpoints(count: Int = 1) -> Endpoints {
        var writers = [Int32]()
        var readers = [Int32]()
        for _ in 0..<count {
            var fds: [Int32] = [0, 0]
            if pipe(&fds) != 0 { fail("pipe: \(String(cString: strerror(errno)))") }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(fds[1], setPipeSize, 1 << 20)
            readers.append(fds[0])
            writers.append(fds[1])
        }
        return Endpoints(writers: writers, readers: readers)
    }
}
