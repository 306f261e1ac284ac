// The floor of the keys row (part 5): the BPF key observer read directly, as
// Benchmarks/sources-floor/floor.c reads the other sources' mechanisms. The bench
// runs itself as `wqfs-bench --keys-floor RING KEY`: this process attaches its own
// KeyObserver (the embedded program wqfs loads), prints "ready", and its main thread
// blocks in epoll_wait on the observer's descriptor; when consume hands it the
// KEYCTL_LINK of KEY into RING it stamps the clock (CLOCK_MONOTONIC, the bench's
// clock) and writes "L KEY NS" to stdout, a pipe to the bench. Runs until killed.
import CSystemCalls
import KeyObserver
#if canImport(Glibc)
import Glibc
#endif

enum KeysFloor {
    static func run(ring: Int32, key: Int32) -> Never {
        let observer: KeyObserver
        do { observer = try KeyObserver() } catch {
            FileHandleError.print("keys-floor: \(error)")
            exit(1)
        }
        let poller = epoll_create1(Int32(EPOLL_CLOEXEC))
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = observer.fileDescriptor
        if poller < 0 || epoll_ctl(poller, EPOLL_CTL_ADD, observer.fileDescriptor, &event) != 0 {
            FileHandleError.print("keys-floor: epoll: \(String(cString: strerror(errno)))")
            exit(1)
        }
        emit("ready\n")
        var ready = epoll_event()
        while true {
            let n = epoll_wait(poller, &ready, 1, -1)
            if n < 0 && errno == EINTR { continue }
            if n < 0 {
                FileHandleError.print("keys-floor: epoll_wait: \(String(cString: strerror(errno)))")
                exit(1)
            }
            observer.consume { result in
                let now = nanotime()
                guard case .success(let event) = result,
                      case .linked(key: .serial(let linked), keyring: .serial(let into)) = event.operation,
                      linked == key, into == ring else { return }
                emit("L \(linked) \(now)\n")
            }
        }
    }

    /// One line, one write(2) (the pipe keeps it whole); the bench gone, the end.
    private static func emit(_ line: String) {
        var line = line
        let ok = line.withUTF8 { write(1, $0.baseAddress, $0.count) == $0.count }
        if !ok { exit(0) }
    }
}

enum FileHandleError {
    static func print(_ text: String) {
        var line = text + "\n"
        _ = line.withUTF8 { write(2, $0.baseAddress, $0.count) }
    }
}
