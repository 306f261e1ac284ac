// libFuzzer target fuzz-kfilter (Fuzz/README.md): FuzzMain starts libFuzzer on it in a
// fuzzer build (Fuzz/run) and replays the files or directories given otherwise.
import WatchQueueFuzzing

@main enum FuzzTarget {
    static func main() {
        FuzzMain.run { data, size in
            ParserTargets.kernelFilter(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
    }
}
