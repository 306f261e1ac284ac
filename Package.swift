// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "wqfs",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "wqfs", targets: ["wqfs"]),
        .executable(name: "wqcat", targets: ["wqcat"]),
        // LD_PRELOAD=libwqfs-compat.so: programs written for the kernel's watch
        // queues run on a wqfs mount unmodified (DESIGN.md §7).
        .library(name: "wqfs-compat", type: .dynamic, targets: ["WQFSCompat"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Layer 1: libfuse3's low-level API, imported through a shim header.
        .systemLibrary(
            name: "CFuse",
            pkgConfig: "fuse3",
            providers: [.apt(["libfuse3-dev"])]
        ),
        // Layer 2: a thin, safe Swift binding of the low-level API.
        .target(name: "FuseBinding", dependencies: ["CFuse"]),
        // Layer 3: the pure engine: records, rings, filters, sources, grammars. No I/O.
        .target(name: "WatchQueueCore"),
        // Beside the core: the real sources (DESIGN §6). For now the pure part: kernel
        // message decoders and the records they become (layouts: include/wqfs/records.h).
        .target(name: "SystemSources", dependencies: ["WatchQueueCore", "CSystemCalls", "KeyObserver", "CKeyObserver"]),
        // epoll, eventfd, netlink, fanotify and the mount syscalls, which Glibc's
        // module does not bring (and syscall(2) is variadic).
        .target(name: "CSystemCalls"),
        // The BPF key observer (SOURCES.md "Keys"), a library for a keys source: the
        // program (Sources/KeyObserverBPF/keys.bpf.c, compiled by the plugin below in
        // every build and embedded as base64), its libbpf loader, and the Swift decoder.
        .systemLibrary(
            name: "CLibbpf",
            pkgConfig: "libbpf",
            providers: [.apt(["libbpf-dev"])]
        ),
        .target(name: "CKeyObserver", dependencies: ["CLibbpf"]),
        .executableTarget(name: "bpf-embed", path: "Plugins/BPFEmbed"),
        .plugin(name: "KeyObserverBPFPlugin", capability: .buildTool(), dependencies: ["bpf-embed"]),
        .target(name: "KeyObserverBPF", exclude: ["keys.bpf.c"], plugins: ["KeyObserverBPFPlugin"]),
        .target(name: "KeyObserver", dependencies: ["CKeyObserver", "KeyObserverBPF"]),

        // Layer 4: the filesystem, mapping inodes and files onto the engine.
        .target(name: "WatchQueueFS", dependencies: ["FuseBinding", "WatchQueueCore", "SystemSources"]),
        // Beside the layers: the C shim the compat library is made of (pipe2, ioctl,
        // syscall and keyctl are variadic or C-only), speaking include/wqfs/compat.h.
        // SwiftPM links it with swiftc, which adds libswiftCore (its swiftrt.o needs
        // it) as wqfs itself has: preloaded, it comes along.
        .target(name: "WQFSCompat", cSettings: [.headerSearchPath("../../include")]),
        // Layer 5: the executables.
        .executableTarget(name: "wqfs", dependencies: ["WatchQueueFS"]),
        // SystemSources for the system records' decoders and mountinfo's unescaping,
        // so the reader and the sources share one definition of each.
        .target(name: "WQCatKit", dependencies: ["WatchQueueCore", "SystemSources"]),
        .executableTarget(name: "wqcat", dependencies: [
            "WQCatKit", "WatchQueueCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The kernel's own structs and macros, compiled from <linux/watch_queue.h>,
        // so tests compare our bytes with the header's rather than with ourselves.
        .target(name: "CWatchQueueABI", path: "Tests/CWatchQueueABI"),
        // The same for the system records: built with include/wqfs/records.h's structs,
        // and the kernel messages the decoders read, built with the kernel's structs.
        .target(name: "CSystemRecordsABI", path: "Tests/CSystemRecordsABI",
                cSettings: [.headerSearchPath("../../include")]),

        // The C client the mount tests drive the queue files with (ioctl, poll, EINTR).
        .executableTarget(name: "wqtestclient", path: "Tests/TestClient",
                          cSettings: [.headerSearchPath("../../include")]),

        // The C program the compat mount tests run under LD_PRELOAD=libwqfs-compat.so:
        // kernel calls only (pipe2, the watch-queue ioctls, keyctl), no wqfs paths.
        .executableTarget(name: "wqfs-compat-client", path: "Tests/CompatClient",
                          cSettings: [.headerSearchPath("../../include")]),

        // The C program the kernel-API mount tests run under LD_PRELOAD: LTP's and the
        // kernel sample's calls, compiled against <linux/watch_queue.h> and <linux/keyctl.h>.
        .executableTarget(name: "wqfs-kernel-api-client", path: "Tests/KernelAPIClient",
                          cSettings: [.headerSearchPath("../../include")]),

        // The benchmark (issue 5): swift run -c release wqfs-bench [--quick] [--json].
        // KeyObserver for the keys row's floor (wqfs-bench --keys-floor, run by the bench
        // itself), CKeyObserver for keyctl(2), CSystemCalls for its epoll.
        .executableTarget(name: "wqfs-bench", dependencies: ["WatchQueueCore", "KeyObserver", "CKeyObserver", "CSystemCalls"],
                          path: "Benchmarks/wqfs-bench"),
        // What the BPF key observer adds to keyctl: swift run -c release keyobserver-bench (root).
        .executableTarget(name: "keyobserver-bench", dependencies: ["KeyObserver", "CKeyObserver"],
                          path: "Benchmarks/keyobserver-bench"),

        // libFuzzer targets, one per parser of user input and one for the engine
        // against a reference model (Fuzz/README.md; run with Fuzz/run). A normal
        // build makes them replay tools: fuzz-engine FILE|DIR...
        .target(name: "WatchQueueFuzzing", dependencies: ["WatchQueueCore", "SystemSources", "KeyObserver", "CFuzzerDriver"], path: "Fuzz/Support"),
        .target(name: "CFuzzerDriver", path: "Fuzz/CFuzzerDriver"),
        .executableTarget(name: "fuzz-filter", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/filter"),
        .executableTarget(name: "fuzz-post", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/post"),
        .executableTarget(name: "fuzz-postbin", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/postbin"),
        .executableTarget(name: "fuzz-kfilter", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/kfilter"),
        .executableTarget(name: "fuzz-watches", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/watches"),
        .executableTarget(name: "fuzz-values", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/values"),
        .executableTarget(name: "fuzz-names", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/names"),
        .executableTarget(name: "fuzz-engine", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/engine"),
        .executableTarget(name: "fuzz-mountinfo", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/mountinfo"),
        .executableTarget(name: "fuzz-uevent", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/uevent"),
        .executableTarget(name: "fuzz-fanotify", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/fanotify"),
        .executableTarget(name: "fuzz-connector", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/connector"),
        .executableTarget(name: "fuzz-keyevent", dependencies: ["WatchQueueFuzzing"], path: "Fuzz/keyevent"),

        .testTarget(name: "WatchQueueCoreTests", dependencies: ["WatchQueueCore", "CWatchQueueABI"]),
        .testTarget(name: "WatchQueueFSTests", dependencies: ["WatchQueueFS", "WatchQueueCore", "CWatchQueueABI"]),
        .testTarget(name: "WQCatTests", dependencies: ["WQCatKit", "WatchQueueCore", "SystemSources"]),
        .testTarget(name: "FuseBindingTests", dependencies: ["FuseBinding"]),
        .testTarget(name: "KeyObserverTests", dependencies: ["KeyObserver", "CKeyObserver"]),
        .testTarget(name: "SystemSourcesTests", dependencies: ["SystemSources", "WatchQueueCore", "CSystemRecordsABI"]),
    ],
    swiftLanguageModes: [.v6]
)
