// wqfs-bench: the benchmark of issue 5.
//
//   swift run -c release wqfs-bench [--quick] [--json] [--only SECTIONS] [--wqfs PATH]
//
// 1. the engine in process (deliveries per second, memory per object);
// 2. end to end through a real mount (latency, batched throughput, fan-out),
// 3. side by side with a minimal C libfuse filesystem (the floor) and a pipe,
//    interleaved run by run;
// 4. scaling with watching queues and with sources present;
// 5. the system sources: event → record latency against the mechanisms read
//    directly, and the server's idle cost while they are watched.
// Prints a markdown table (or JSON with --json) on stdout; progress on stderr.
#if canImport(Glibc)
import Glibc
#endif
import WatchQueueCore

struct Options {
    var quick = false
    var json = false
    var sections: Set<String> = ["memory", "core", "latency", "throughput", "fanout", "scaling", "sources"]
    var wqfsBinary: String?
    var build = true

    static let usage = """
        usage: wqfs-bench [--quick] [--json] [--only memory,core,latency,throughput,fanout,scaling,sources]
                          [--wqfs PATH] [--no-build]
          --quick     a shorter run (under a minute)
          --json      JSON on stdout instead of the table
          --only      run only these sections
          --wqfs      use this wqfs binary instead of building one (release) next to this one
          --no-build  use the wqfs binary next to this executable as it is
        """

    static func parse(_ arguments: [String]) -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--quick": options.quick = true
            case "--json": options.json = true
            case "--no-build": options.build = false
            case "--only":
                guard let list = iterator.next() else { fail("--only needs a list\n\(usage)") }
                options.sections = Set(list.split(separator: ",").map(String.init))
            case "--wqfs":
                guard let path = iterator.next() else { fail("--wqfs needs a path\n\(usage)") }
                options.wqfsBinary = path
            case "-h", "--help":
                print(usage)
                exit(0)
            default: fail("unknown argument \(argument)\n\(usage)")
            }
        }
        return options
    }
}

/// How long each part runs.
struct Plan {
    var reps: Int
    var latencyRounds: Int // per repetition and system
    var streamSeconds: Double
    var fanoutRounds: Int
    var fanoutQueues = 64
    var coreSeconds: Double
    var scaleReps: Int
    var scaleRounds: Int
    var scaleSeconds: Double
    var scaleQueues = [1, 10, 100, 1000]
    var scaleSources: [Int]
    var memorySources: Int
    /// Part 5: a few hundred rounds per source and system in the full run.
    var sources = SourcesBench.Plan(reps: 5, rounds: 60, fuseRounds: 400, idleSeconds: 10)

    static let full = Plan(reps: 5, latencyRounds: 2000, streamSeconds: 0.4, fanoutRounds: 100, coreSeconds: 0.5,
                           scaleReps: 3, scaleRounds: 1000, scaleSeconds: 0.3, scaleSources: [10, 1000, 100_000],
                           memorySources: 100_000)
    static let quick = Plan(reps: 3, latencyRounds: 600, streamSeconds: 0.15, fanoutRounds: 30, coreSeconds: 0.2,
                            scaleReps: 2, scaleRounds: 300, scaleSeconds: 0.1, scaleSources: [10, 1000, 10_000],
                            memorySources: 20_000,
                            sources: SourcesBench.Plan(reps: 3, rounds: 30, fuseRounds: 200, idleSeconds: 3,
                                                       describeCalls: 50_000, describeRounds: 3))
}

// The keys row's floor process (KeysFloor.swift): the bench runs itself so.
if CommandLine.arguments.count == 4, CommandLine.arguments[1] == "--keys-floor",
   let ring = Int32(CommandLine.arguments[2]), let key = Int32(CommandLine.arguments[3]) {
    KeysFloor.run(ring: ring, key: key)
}
let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let plan = options.quick ? Plan.quick : Plan.full
Cleanup.install()
var machine = Machine.current(quick: options.quick)
var rows = [Row]()
let started = nanotime()

// The package root, from this file's path: Benchmarks/wqfs-bench/main.swift.
let packageRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

// MARK: part 1: the engine in process

if options.sections.contains("memory") {
    log("memory: RSS over 10 000 queues, 2.57 M slots, 100 000 watches, \(plan.memorySources) sources")
    let memory = CoreBench.memory(queues: 10_000, sources: plan.memorySources, watchSources: 10)
    let section = "1. Core engine: memory (RSS deltas)"
    rows.append(Row(section: section, name: "per queue slot (\(memory.objects.slots) slots, each holding a 127-byte record)", unit: .bytes,
                    wqfs: memory.perSlot, target: Target(text: "≤ 160 B", met: memory.perSlot <= 160)))
    rows.append(Row(section: section, name: "per idle queue (size 1, its one slot included; \(memory.objects.queues) queues)",
                    unit: .bytes, wqfs: memory.perIdleQueue))
    rows.append(Row(section: section, name: "per source (\(memory.objects.sources) sources)", unit: .bytes, wqfs: memory.perSource))
    rows.append(Row(section: section, name: "per watch (\(memory.objects.watches) watches)", unit: .bytes, wqfs: memory.perWatch))
}

if options.sections.contains("core") {
    let section = "1. Core engine: deliveries (16-byte records, 4 KiB posts, one thread)"
    for filter in [false, true] {
        for queues in [1, 8, 64] {
            log("core: \(queues) queues, \(filter ? "4-entry filter" : "no filter")")
            let result = CoreBench.deliveries(queues: queues, filter: filter, duration: plan.coreSeconds)
            let name = "\(queues) queue\(queues == 1 ? "" : "s"), \(filter ? "4-entry filter (last matches)" : "no filter")"
            rows.append(Row(section: section, name: name + ": post", unit: .copiesPerSecond, wqfs: result.postRate,
                            target: Target(text: "≥ 10 M/s", met: result.postRate >= 10e6)))
            rows.append(Row(section: section, name: name + ": post + drain by read(from:into:)", unit: .copiesPerSecond,
                            wqfs: result.cycleRate))
        }
    }
    log("core: text posts")
    let text = CoreBench.textPosts(duration: plan.coreSeconds)
    rows.append(Row(section: section, name: "1 queue, text post of 100 lines (parse + post + drain)", unit: .recordsPerSecond,
                    wqfs: text, note: "what the end-to-end text figure can reach at most; the parse is Grammar.post"))
}

// MARK: parts 2-4: through mounts

let endToEnd = ["latency", "throughput", "fanout", "scaling", "sources"].contains { options.sections.contains($0) }
if endToEnd {
    guard getuid() == 0 || access("/dev/fuse", R_OK | W_OK) == 0 else { fail("mounting needs /dev/fuse (run as root)") }
    var template = Array("/tmp/wqfs-bench.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fail("mkdtemp: \(String(cString: strerror(errno)))") }
    let work = String(cString: made)
    Cleanup.setWorkDirectory(work)
    defer { _ = run(["rm", "-rf", work]) }

    // The wqfs binary: built (release) next to this executable unless given.
    let wqfsBinary: String = {
        if let given = options.wqfsBinary { return given }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, 4095)
        guard n > 0 else { fail("cannot find this executable") }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var parts = exe.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast()
        let directory = parts.joined(separator: "/")
        let scratch = parts.dropLast(2).joined(separator: "/") // <scratch>/<triple>/release
        if options.build {
            log("building wqfs (release) in \(scratch)")
            if run(["swift", "build", "-c", "release", "--product", "wqfs", "--package-path", packageRoot,
                    "--scratch-path", scratch]) != 0 {
                if !fileExists("\(directory)/wqfs") { fail("cannot build wqfs") }
                log("warning: swift build failed; using the existing \(directory)/wqfs")
            }
        }
        return "\(directory)/wqfs"
    }()
    guard fileExists(wqfsBinary) else { fail("no wqfs binary at \(wqfsBinary) (build it: swift build -c release --product wqfs)") }
    log("compiling the C floor")
    let floorBinary = CFloor.build(source: "\(packageRoot)/Benchmarks/cfloor/cfloor.c", directory: work)

    let wqfsOptions = "max_watches=1000000,max_sources=200000,max_queues=10000"
    let wqfs = WQFS(binary: wqfsBinary, mountpoint: "\(work)/wqfs", options: wqfsOptions)
    let floor = CFloor(binary: floorBinary, mountpoint: "\(work)/floor", queues: 1)
    var floorFanout: CFloor?
    defer {
        wqfs.server.stop()
        floor.server.stop()
        floorFanout?.server.stop()
    }

    /// Runs `body` for each system, `reps` times, rotating the order every
    /// repetition so drift and order effects fall on all systems alike.
    func interleave<T>(_ systems: [SystemKind], reps: Int, _ body: (SystemKind) -> T) -> [SystemKind: [T]] {
        var results = [SystemKind: [T]]()
        for rep in 0..<reps {
            for index in 0..<systems.count {
                let system = systems[(index + rep) % systems.count]
                results[system, default: []].append(body(system))
            }
        }
        return results
    }

    /// Median rates and the medians of per-repetition ratios.
    func rateRow(_ section: String, _ name: String, _ unit: Unit, _ results: [SystemKind: [Double]],
                 target: (Double, Double?) -> Target? = { _, _ in nil }, note: String? = nil) -> Row {
        let w = results[.wqfs] ?? []
        let f = results[.floor]
        let p = results[.pipe]
        let ratioF = f.map { f in median(zip(w, f).map { $0 / $1 }) }
        let ratioP = p.map { p in median(zip(w, p).map { $0 / $1 }) }
        return Row(section: section, name: name, unit: unit, wqfs: median(w), floor: f.map(median), pipe: p.map(median),
                   ratioFloor: ratioF, ratioPipe: ratioP, target: target(median(w), ratioF), note: note)
    }

    /// Latency rows (median and p99 over all pooled round trips).
    func latencyRows(_ section: String, _ name: String, _ results: [SystemKind: [(samples: [UInt64], unverified: Int)]],
                     target: ((Double) -> Target?)? = nil) -> [Row] {
        func pooled(_ system: SystemKind) -> [UInt64]? { results[system].map { $0.flatMap(\.samples) } }
        let unverified = results.values.joined().map(\.unverified).reduce(0, +)
        let count = pooled(.wqfs)?.count ?? 0
        var out = [Row]()
        for (label, p) in [("median", 0.5), ("p99", 0.99)] {
            let w = pooled(.wqfs).map { percentile($0, p) / 1000 } ?? .nan
            let f = pooled(.floor).map { percentile($0, p) / 1000 }
            let pp = pooled(.pipe).map { percentile($0, p) / 1000 }
            var row = Row(section: section, name: "\(name), \(label) (\(count) round trips)", unit: .microseconds, wqfs: w,
                          floor: f, pipe: pp, ratioFloor: f.map { w / $0 }, ratioPipe: pp.map { w / $0 })
            if label == "median", let target, let r = row.ratioFloor { row.target = target(r) }
            if unverified > 0 && label == "median" {
                row.note = "\(unverified) rounds could not confirm the reader was asleep in read() first"
            }
            out.append(row)
        }
        return out
    }

    let all = SystemKind.allCases
    let window = 16_384

    // 2a. Single-record latency.
    if options.sections.contains("latency") {
        log("latency: \(plan.reps) × \(plan.latencyRounds) round trips per system")
        let (wq, done) = wqfs.setUp(queues: 1, size: window)
        let fl = floor.endpoints()
        let pi = Pipes.endpoints()
        let results = interleave(all, reps: plan.reps) { system in
            Clients.latency(system == .wqfs ? wq : system == .floor ? fl : pi, record: Payload.record, rounds: plan.latencyRounds)
        }
        done()
        fl.close()
        pi.close()
        rows += latencyRows("2a. End to end: single-record latency (post.bin write → blocked read returns)", "one 16-byte record", results) {
            Target(text: "≤ 1.10× floor", met: $0 <= 1.10)
        }
    }

    // 2b. Batched throughput.
    if options.sections.contains("throughput") {
        let section = "2b. End to end: batched throughput (64 KiB reads)"
        let cases: [(String, [UInt8], Int, Bool, Double?)] = [
            ("post.bin, 4 KiB writes (256 records)", Payload.batch4K, 256, false, 2e6),
            ("post.bin, 64 KiB writes (4096 records)", Payload.batch64K, 4096, false, 2e6),
            ("post, 100-line text writes", Payload.text100, 100, true, nil),
        ]
        for (name, batch, perBatch, text, _) in cases {
            log("throughput: \(name)")
            let (wq, done) = wqfs.setUp(queues: 1, size: window, text: text)
            let fl = floor.endpoints()
            let pi = Pipes.endpoints()
            let results = interleave(all, reps: plan.reps) { system -> Double in
                let endpoints = system == .wqfs ? wq : system == .floor ? fl : pi
                let unit = text && system != .wqfs ? Payload.line.utf8.count : 16
                return Clients.stream(endpoints, batch: batch, recordsPerBatch: perBatch, readUnit: unit,
                                      window: window, duration: plan.streamSeconds)
            }
            done()
            fl.close()
            pi.close()
            rows.append(rateRow(section, name, .recordsPerSecond, results, target: { rate, ratio in
                if text { return Target(text: "≥ 500 k/s", met: rate >= 500e3) }
                return Target(text: "≥ 0.8× floor and ≥ 2 M/s", met: rate >= 2e6 && (ratio ?? 0) >= 0.8)
            }, note: text ? "the floor and the pipe carry the same text bytes (14 per line) unparsed" : nil))
        }
    }

    // 2c. Fan-out.
    if options.sections.contains("fanout") {
        let queues = plan.fanoutQueues
        log("fan-out: one post, \(queues) queues, \(plan.reps) × \(plan.fanoutRounds) rounds")
        floorFanout = CFloor(binary: floorBinary, mountpoint: "\(work)/floor\(queues)", queues: queues)
        let (wq, done) = wqfs.setUp(queues: queues, size: 256, readAll: true)
        let fl = floorFanout!.endpoints(readAll: true)
        let pi = Pipes.endpoints(count: queues)
        let results = interleave(all, reps: plan.reps) { system in
            Clients.fanout(system == .wqfs ? wq : system == .floor ? fl : pi, record: Payload.record, rounds: plan.fanoutRounds)
        }
        done()
        fl.close()
        pi.close()
        floorFanout?.server.stop()
        floorFanout = nil
        var latency = latencyRows("2c. End to end: fan-out (one post, \(queues) watching queues, each read by its own thread)",
                                  "post → all \(queues) copies read", results)
        for index in latency.indices {
            latency[index].note = (latency[index].note.map { $0 + "; " } ?? "")
                + (index == 0 ? "the C floor's post copies into its \(queues) queue buffers; the pipe is \(queues) pipes, one write each" : "")
            if latency[index].note == "" { latency[index].note = nil }
        }
        rows += latency
    }

    // 4. Scaling.
    if options.sections.contains("scaling") {
        let pair: [SystemKind] = [.wqfs, .floor]
        let fl = floor.endpoints()
        func measure(_ section: String, _ label: String, _ wq: Endpoints) {
            let latency = interleave(pair, reps: plan.scaleReps) { system in
                Clients.latency(system == .wqfs ? wq : fl, record: Payload.record, rounds: plan.scaleRounds)
            }
            rows += latencyRows(section, "\(label): latency", latency).prefix(1)
            let rates = interleave(pair, reps: plan.scaleReps) { system in
                Clients.stream(system == .wqfs ? wq : fl, batch: Payload.batch4K, recordsPerBatch: 256, readUnit: 16,
                               window: window, duration: plan.scaleSeconds)
            }
            rows.append(rateRow(section, "\(label): post.bin 4 KiB throughput", .recordsPerSecond, rates))
        }
        let queueSection = "4. Scaling: queues watching one source (one read, the rest unread at size 256)"
        for queues in plan.scaleQueues {
            log("scaling: \(queues) watching queues")
            let (wq, done) = wqfs.setUp(queues: queues, size: window)
            measure(queueSection, "\(queues) queue\(queues == 1 ? "" : "s")", wq)
            done()
        }
        // Sources present: created as directories through the mount, in a fresh mount.
        wqfs.server.stop()
        let sourcesMount = WQFS(binary: wqfsBinary, mountpoint: "\(work)/wqfs-sources", options: wqfsOptions)
        defer { sourcesMount.server.stop() }
        let sourceSection = "4. Scaling: sources present (one posts, watched by one queue)"
        var present = 0
        var baseRSS = 0 // the server's RSS once the first level is made
        var basePresent = 0
        for target in plan.scaleSources {
            log("scaling: \(target) sources present")
            let (wq, done) = sourcesMount.setUp(queues: 1, size: window) // its source counts as one
            let start = nanotime()
            let toMake = target - 1 - present
            // Two threads of mkdir, as a shell loop would, but faster.
            let half = toMake / 2
            let base = present
            let root = sourcesMount.root
            let makers = [(0, half), (half, toMake)].map { range in
                JoinableThread {
                    for index in range.0..<range.1 where mkdir("\(root)/sources/bulk\(base + index)", 0o755) != 0 {
                        fail("mkdir bulk\(base + index): \(String(cString: strerror(errno)))")
                    }
                }
            }
            makers.forEach { $0.join() }
            present += toMake
            let made = seconds(start, nanotime())
            measure(sourceSection, "\(target) sources", wq)
            done()
            let rss = sourcesMount.server.residentBytes
            if toMake > 0 {
                let perSource = baseRSS > 0 ? Double(rss - baseRSS) / Double(present - basePresent) : nil
                rows.append(Row(section: sourceSection, name: "\(target) sources: mkdir through the mount (\(toMake) made)",
                                unit: .microseconds, wqfs: made / Double(toMake) * 1e6,
                                note: perSource.map { "server RSS per source made since the first level: \(Format.fixed($0, 0)) B" }))
            }
            if baseRSS == 0 {
                baseRSS = rss
                basePresent = present
            }
        }
        fl.close()
    }

    // 5. System sources: their own mount (with every source), the floor process
    // per batch, and the C floor above for the FUSE round trip.
    if options.sections.contains("sources") {
        rows += SourcesBench.measure(plan: plan.sources, work: work, wqfsBinary: wqfsBinary,
                                     floorSource: "\(packageRoot)/Benchmarks/sources-floor/floor.c", fuseFloor: floor)
    }
    machine.loadAfter = Machine.loadAverage()
}

if machine.loadAfter.isEmpty { machine.loadAfter = Machine.loadAverage() }
log("done in \(Format.fixed(seconds(started, nanotime()), 1)) s")
if options.json {
    print(Report.json(rows, machine: machine), terminator: "")
} else {
    print(Report.table(rows, machine: machine), terminator: "")
}
