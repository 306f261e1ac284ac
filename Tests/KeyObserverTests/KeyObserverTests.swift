import CKeyObserver
import Foundation
import KeyObserver
import Testing
#if canImport(Glibc)
import Glibc
#endif

// The BPF key observer against the real kernel: each test makes key operations with
// keyutils' `keyctl` inside `keyctl session -` (a fresh session keyring, so its events
// are told from the machine's others by the caller's session keyring) and checks the
// events the observer reports, serials included.

/// Why the observer cannot run here, or nil. Tried once.
private let unavailable: String? = {
    guard geteuid() == 0 else { return "not root: loading BPF needs root" }
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/keyctl") || FileManager.default.isExecutableFile(atPath: "/bin/keyctl")
    else { return "keyutils' keyctl is not installed" }
    do { _ = try KeyObserver() } catch { return "BPF refused: \(error)" }
    return nil
}()

/// Runs a shell script and returns its standard output.
private func shell(_ script: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// The `name serial` lines a script printed.
private func serials(_ output: String) -> [String: Int32] {
    var result: [String: Int32] = [:]
    for line in output.split(separator: "\n") {
        let words = line.split(separator: " ")
        if words.count == 2, let value = Int32(words[1]) { result[String(words[0])] = value }
    }
    return result
}

/// Every event waiting in the observer. The events of a finished process are all in
/// the ring already: each was submitted before its system call returned.
private func drain(_ observer: KeyObserver) -> [KeyEvent] {
    var events: [KeyEvent] = []
    observer.consume { result in
        switch result {
        case .success(let event): events.append(event)
        case .failure(let error): Issue.record("undecodable event: \(error)")
        }
    }
    return events
}

@Suite("BPF key observer", .serialized, .enabled(if: unavailable == nil, "needs root, keyutils and a kernel that loads the BPF key observer"))
struct KeyObserverTests {
    init() {
        if let unavailable { print("KeyObserverTests skipped: \(unavailable)") }
    }

    @Test("each key-changing keyctl gives one event with the right serials; reads and failures give none")
    func operations() throws {
        let observer = try KeyObserver()
        _ = drain(observer)
        let output = try shell("""
            keyctl session - sh -c '
            echo s $(keyctl id @s)
            k=$(keyctl add user wqfs-a one @s); echo k $k
            keyctl update $k two
            echo k2 $(keyctl add user wqfs-a three @s)
            r=$(keyctl newring wqfs-r @s); echo r $r
            keyctl link $k $r
            keyctl unlink $k $r
            keyctl setperm $k 0x3f3f0000
            keyctl chown $k 0
            keyctl timeout $k 1000
            keyctl move $k @s $r
            keyctl describe $k; keyctl show @s; keyctl read $k; keyctl print $k; keyctl rdescribe $r
            echo q $(keyctl request user wqfs-a)
            keyctl update 2147483000 x; keyctl unlink $r $k; keyctl reject $k 10 1 @s; keyctl revoke 2147483000
            keyctl revoke $k
            i=$(keyctl add user wqfs-i x @s); echo i $i
            keyctl invalidate $i
            keyctl restrict_keyring $r
            keyctl clear $r
            ' 2>/dev/null
            """)
        let ids = serials(output)
        let s = try #require(ids["s"]), k = try #require(ids["k"]), r = try #require(ids["r"]), i = try #require(ids["i"])
        #expect(ids["k2"] == k, "add_key over an existing key returns its serial")
        #expect(ids["q"] == k)
        let events = drain(observer).filter { $0.sessionKeyring == s }
        let session = KeyReference.serial(s), key = KeyReference.serial(k), ring = KeyReference.serial(r)
        let expected: [KeyOperation] = [
            .added(key: k, keyring: session, type: "user", description: "wqfs-a"),
            .updated(key),
            .added(key: k, keyring: session, type: "user", description: "wqfs-a"),
            .added(key: r, keyring: session, type: "keyring", description: "wqfs-r"),
            .linked(key: key, keyring: ring),
            .unlinked(key: key, keyring: ring),
            .permissionsSet(key, permissions: 0x3f3f_0000),
            .ownerChanged(key, uid: 0, gid: UInt32.max),
            .timeoutSet(key, seconds: 1000),
            // keyctl move without -f asks for KEYCTL_MOVE_EXCL.
            .moved(key: key, from: session, to: ring, exclusive: true),
            .requested(key: k, destination: nil, type: "user", description: "wqfs-a"),
            .revoked(key),
            .added(key: i, keyring: session, type: "user", description: "wqfs-i"),
            .invalidated(.serial(i)),
            .restricted(keyring: ring),
            .cleared(ring),
        ]
        #expect(events.map(\.operation) == expected)
        for event in events {
            #expect(event.uid == 0 && event.tgid > 0 && event.pid > 0)
            #expect(event.keyctlOperation == nil ? event.syscall != .keyctl : event.syscall == .keyctl)
        }
    }

    @Test("@u and @us resolve in user space to the keyrings `keyctl id` names, for root and for another uid")
    func userKeyrings() throws {
        let root = serials(try shell("echo u $(keyctl id @u); echo us $(keyctl id @us)"))
        #expect(KeyObserver.resolveUserKeyring(uid: 0, id: -4) == .success(try #require(root["u"])))
        #expect(KeyObserver.resolveUserKeyring(uid: 0, id: -5) == .success(try #require(root["us"])))
        let nobody = serials(try shell("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'echo u $(keyctl id @u); echo us $(keyctl id @us)'"))
        #expect(KeyObserver.resolveUserKeyring(uid: 65534, id: -4) == .success(try #require(nobody["u"])))
        #expect(KeyObserver.resolveUserKeyring(uid: 65534, id: -5) == .success(try #require(nobody["us"])))
        // The resolving thread took the uid alone: this thread is still root.
        #expect(geteuid() == 0 && getuid() == 0)
        if case .success = KeyObserver.resolveUserKeyring(uid: 0, id: -3) { Issue.record("-3 is not a user keyring") }

        let observer = try KeyObserver()
        _ = drain(observer)
        let output = try shell("""
            keyctl session - sh -c '
            echo s $(keyctl id @s)
            k=$(keyctl add user wqfs-u x @s); echo k $k
            keyctl link $k @u; keyctl unlink $k @u
            t=$(keyctl add user wqfs-us x @us); echo t $t; keyctl unlink $t @us
            '
            """)
        let ids = serials(output)
        let s = try #require(ids["s"]), k = try #require(ids["k"]), t = try #require(ids["t"])
        let u = KeyReference.serial(try #require(root["u"])), us = KeyReference.serial(try #require(root["us"]))
        let events = drain(observer).filter { $0.sessionKeyring == s }
        #expect(events.map(\.operation) == [
            .added(key: k, keyring: .serial(s), type: "user", description: "wqfs-u"),
            .linked(key: .serial(k), keyring: u),
            .unlinked(key: .serial(k), keyring: u),
            .added(key: t, keyring: us, type: "user", description: "wqfs-us"),
            .unlinked(key: .serial(t), keyring: us),
        ])
    }

    @Test("request_key's upcall: the helper's instantiate, negate and reject are seen")
    func construction() throws {
        // keyutils' /etc/request-key.conf answers `debug:*` descriptions: callout
        // `negate` negates, `rejected` rejects, anything else instantiates
        // (request-key-debug.sh). The helper runs in a session of its own, so its
        // events are picked by the keyring they name.
        guard FileManager.default.fileExists(atPath: "/sbin/request-key") else { return }
        let observer = try KeyObserver()
        _ = drain(observer)
        let ids = serials(try shell("""
            keyctl session - sh -c '
            echo s $(keyctl id @s)
            echo y $(keyctl request2 user debug:wqfs-y hello @s)
            keyctl request2 user debug:wqfs-n negate @s; keyctl request2 user debug:wqfs-r rejected @s
            '
            """))
        let s = try #require(ids["s"]), y = try #require(ids["y"])
        let events = drain(observer)
        let mine = events.filter { event in
            switch event.operation {
            case .instantiated(_, let keyring), .negated(_, _, _, let keyring): keyring == .serial(s)
            default: event.sessionKeyring == s
            }
        }.map(\.operation)
        guard mine.count == 4 else {
            Issue.record("events: \(mine)")
            return
        }
        #expect(mine[0] == .instantiated(key: .serial(y), keyring: .serial(s)))
        #expect(mine[1] == .requested(key: y, destination: .serial(s), type: "user", description: "debug:wqfs-y"))
        if case .negated(_, let error, let timeout, _) = mine[2] { #expect(error == ENOKEY && timeout == 30) } else { Issue.record("\(mine[2])") }
        if case .negated(_, let error, let timeout, _) = mine[3] { #expect(error == EKEYREJECTED && timeout == 30) } else { Issue.record("\(mine[3])") }
    }

    @Test("the special ids @t and @p resolve from the caller's keyrings, created by the call itself")
    func threadAndProcessKeyrings() throws {
        let observer = try KeyObserver()
        _ = drain(observer)
        // One process makes both: `keyctl` creates @t/@p on first use (KEY_LOOKUP_CREATE).
        let k = try #require(Int32(try shell("keyctl add user wqfs-t x @t").trimmingCharacters(in: .whitespacesAndNewlines)))
        let p = try #require(Int32(try shell("keyctl add user wqfs-p x @p").trimmingCharacters(in: .whitespacesAndNewlines)))
        let events = drain(observer)
        let t = try #require(events.first { if case .added(k, _, _, _) = $0.operation { true } else { false } })
        #expect(t.threadKeyring > 0 && t.operation == .added(key: k, keyring: .serial(t.threadKeyring), type: "user", description: "wqfs-t"))
        let q = try #require(events.first { if case .added(p, _, _, _) = $0.operation { true } else { false } })
        #expect(q.processKeyring > 0 && q.operation == .added(key: p, keyring: .serial(q.processKeyring), type: "user", description: "wqfs-p"))
    }

    @Test("a read-only keyctl (describe) leaves before any map: no event, nothing counted")
    func describeIsFree() throws {
        let observer = try KeyObserver()
        _ = drain(observer)
        let before = observer.counters
        for _ in 0..<1000 { _ = wq_keyctl(6 /* KEYCTL_DESCRIBE */, UInt(bitPattern: -3), 0, 0, 0) }
        let after = observer.counters
        #expect(after.sent == before.sent && after.unmatched == before.unmatched && after.dropped == 0)
        #expect(drain(observer).filter { $0.tgid == getpid() }.isEmpty)
        // A failed change gives nothing either.
        #expect(wq_keyctl(2 /* KEYCTL_UPDATE */, 2_147_483_000, 0, 0, 0) == -1)
        #expect(drain(observer).filter { $0.tgid == getpid() }.isEmpty)
    }

    @Test("rapid calls: back-to-back keyctl processes and a loop in one process each give their event")
    func rapidCalls() throws {
        let observer = try KeyObserver()
        _ = drain(observer)
        let before = observer.counters
        // Each add a new process, started as soon as the one before exits.
        let count = 40
        let output = try shell("""
            keyctl session - sh -c '
            echo s $(keyctl id @s)
            i=0; while [ $i -lt \(count) ]; do keyctl add user wqfs-rapid-$i v1 @s >/dev/null || echo failed $i; i=$((i+1)); done
            k=$(keyctl add user wqfs-rapid-u v1 @s); echo k $k
            i=0; while [ $i -lt \(count) ]; do keyctl update $k v$i || echo failed $i; i=$((i+1)); done
            ' 2>/dev/null
            """)
        #expect(!output.contains("failed"))
        let ids = serials(output)
        let s = try #require(ids["s"]), k = try #require(ids["k"])
        // Many calls from one thread of this process: KEYCTL_CLEAR of its (empty) thread keyring.
        let thread = wq_keyctl(0 /* KEYCTL_GET_KEYRING_ID */, UInt(bitPattern: -1), 1, 0, 0)
        try #require(thread > 0)
        for _ in 0..<count { #expect(wq_keyctl(7 /* KEYCTL_CLEAR */, UInt(thread), 0, 0, 0) == 0) }
        let events = drain(observer)
        let added = events.filter { $0.sessionKeyring == s }.compactMap { event -> String? in
            if case .added(_, _, "user", let description) = event.operation { description } else { nil }
        }
        #expect(added == (0..<count).map { "wqfs-rapid-\($0)" } + ["wqfs-rapid-u"])
        let updates = events.filter { $0.sessionKeyring == s && $0.operation == .updated(.serial(k)) }
        #expect(updates.count == count)
        let clears = events.filter { $0.tgid == getpid() && $0.operation == .cleared(.serial(Int32(thread))) }
        #expect(clears.count == count)
        let after = observer.counters
        #expect(after.dropped == before.dropped && after.unmatched == before.unmatched)
    }

    @Test("the observer's descriptor is readable exactly when events wait")
    func descriptor() throws {
        let observer = try KeyObserver()
        _ = drain(observer)
        var poll = pollfd(fd: observer.fileDescriptor, events: Int16(POLLIN), revents: 0)
        _ = try shell("keyctl session - keyctl add user wqfs-poll x @s >/dev/null")
        #expect(Glibc.poll(&poll, 1, 1000) == 1)
        #expect(!drain(observer).isEmpty)
    }
}
