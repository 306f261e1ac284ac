// libFuzzer target fuzz-postbin (Fuzz/README.md). Fuzz/run builds it with
// -sanitize=fuzzer and -DFUZZING, and then main starts libFuzzer's driver on it;
// a normal build has no fuzzer, and main replays the files or directories given.
import WatchQueueFuzzing
#if FUZZING
import CFuzzerDriver
import Glibc
#endif

@main enum FuzzTarget {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            ParserTargets.postBinary(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
        #else
        FuzzReplay.main(ParserTargets.postBinary)
        #endif
    }
}
