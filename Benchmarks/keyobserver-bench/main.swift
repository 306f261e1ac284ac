// keyobserver-bench [CALLS]: what the BPF key observer adds to a read-only keyctl.
// Times a tight loop of KEYCTL_DESCRIBE on the session keyring without the observer
// and with it attached, five rounds each, and prints the median nanoseconds per call. The program leaves describe on entry (keys.bpf.c), so the
// difference is the cost of the two tracepoints firing. Then the same for
// KEYCTL_SET_TIMEOUT on a keyring of its own, which the observer reports. Root only.
import CKeyObserver
import KeyObserver
#if canImport(Glibc)
import Glibc
#endif

let calls = CommandLine.arguments.count > 1 ? max(1000, Int(CommandLine.arguments[1]) ?? 0) : 1_000_000

func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Median ns per call of `body` over five rounds.
func measure(_ body: () -> Void) -> Double {
    var rounds: [Double] = []
    for _ in 0..<5 {
        let start = now()
        for _ in 0..<calls { body() }
        rounds.append(Double(now() - start) / Double(calls))
    }
    return rounds.sorted()[2]
}

var buffer = [CChar](repeating: 0, count: 256)
let describe = {
    _ = buffer.withUnsafeMutableBufferPointer { wq_keyctl(6 /* KEYCTL_DESCRIBE */, UInt(bitPattern: -3), UInt(bitPattern: $0.baseAddress), 256, 0) }
}
// A keyring of the benchmark's own to set a timeout on: its thread keyring, made by
// the lookup (timeout 0 means none, so nothing expires).
let key = Int(wq_keyctl(0 /* KEYCTL_GET_KEYRING_ID */, UInt(bitPattern: -1), 1, 0, 0))
let timeout = { _ = wq_keyctl(15 /* KEYCTL_SET_TIMEOUT */, UInt(key), 0, 0, 0) }
guard key > 0, wq_keyctl(15, UInt(key), 0, 0, 0) == 0 else {
    print("keyobserver-bench: no keyring to time KEYCTL_SET_TIMEOUT on")
    exit(1)
}

let plainDescribe = measure(describe), plainTimeout = measure(timeout)
let observer: KeyObserver
do { observer = try KeyObserver(ringBytes: 1 << 24) } catch {
    print("keyobserver-bench: \(error)")
    exit(1)
}
let attachedDescribe = measure(describe)
// Events are drained between rounds only: a 16 MiB ring holds 170,000 of them, and
// drops (counted) do not change what the caller's syscall pays.
var attachedTimeout: [Double] = []
for _ in 0..<5 {
    let start = now()
    for _ in 0..<min(calls, 150_000) { timeout() }
    attachedTimeout.append(Double(now() - start) / Double(min(calls, 150_000)))
    observer.consume { _ in }
}
let counters = observer.counters
withExtendedLifetime(observer) {}
print("""
    calls per round: \(calls), median of 5 rounds, ns per call
    KEYCTL_DESCRIBE     without observer \(String(format: plainDescribe))  attached \(String(format: attachedDescribe))  added \(String(format: attachedDescribe - plainDescribe))
    KEYCTL_SET_TIMEOUT  without observer \(String(format: plainTimeout))  attached \(String(format: attachedTimeout.sorted()[2]))  added \(String(format: attachedTimeout.sorted()[2] - plainTimeout)) (reported: \(counters.sent) events sent, \(counters.dropped) dropped)
    """)

func String(format value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}
