import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Issue 11: keyutils' own `keyctl watch`, unmodified, on a kernel without watch
// queues: LD_PRELOAD of libwqfs-compat.so gives it its queue, the server's key
// observer gives it the records, and the shell that changes the keys runs without
// any preload.

/// Why key tests cannot run on this mount, or nil.
private func keysUnavailable(_ m: Mount) throws -> String? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/keyctl") || FileManager.default.isExecutableFile(atPath: "/bin/keyctl") else {
        return "keyutils is not installed"
    }
    let line = try m.text("README").split(separator: "\n").first { $0.hasPrefix("keys: ") }
    return line?.contains("BPF on the") == true ? nil : "the key observer is not running: \(line ?? "no keys line")"
}

/// A mount with the keys source, or a skip message when keys cannot be observed.
private func withKeysMount(_ body: (Mount) throws -> Void) throws {
    try withMount(["sources=keys"]) { m throws in
        if let reason = try keysUnavailable(m) {
            FileHandle.standardError.write(Data("skipped: \(reason)\n".utf8))
            return
        }
        try body(m)
    }
}

/// Runs `script` (after `Mount.prelude`, with WQFS_MOUNT set) in a fresh session
/// keyring, so its keys go with it.
private func runInSession(_ m: Mount, _ script: String, timeout: TimeInterval) throws -> Outcome {
    try run("/bin/keyctl", ["session", "-", "/bin/sh", "-c", Mount.prelude + "export WQFS_MOUNT=$M\n" + script],
            directory: m.path, environment: m.environment, timeout: timeout)
}

extension MountTests {
    @Suite("keys") struct KeyWatchTests {
        @Test("keyctl watch, preloaded, prints exactly the kernel's lines while a plain shell changes the keys")
        func keyctlWatch() throws {
            try withKeysMount { m throws in
                // Each watcher is started, then the script waits until the server lists
                // its watch, so no change comes before it. The whole script runs in a
                // fresh session keyring; only the watchers are preloaded.
                let script = """
                    pre() { LD_PRELOAD=$SHIM "$@"; }
                    # A watch is listed as soon as it is made, and in force once the
                    # observer is attached (keyctl watch's own ioctl returns then).
                    watching() { waitfor "[ \\$(grep -c '^\\[anonymous\\]' keys/$1/watches 2>/dev/null) -ge $2 ] && grep -q 'state watching' keys/$1/status"; }
                    S=$(keyctl id @s)
                    pre keyctl watch @s > $T/s.log 2>&1 & SW=$!
                    pre keyctl watch -f l @s > $T/links.log 2>&1 & LW=$!
                    watching $S 2
                    K1=$(keyctl add user k1 v1 @s); K2=$(keyctl add user k2 v2 @s)
                    pre keyctl watch $K1 > $T/k1.log 2>&1 & W1=$!
                    pre keyctl watch $K2 > $T/k2.log 2>&1 & W2=$!
                    watching $K1 1; watching $K2 1
                    keyctl update $K1 v3
                    keyctl setperm $K1 0x3f3f0000
                    keyctl chown $K1 0
                    keyctl timeout $K1 1000
                    keyctl link $K1 @s
                    keyctl revoke $K1
                    keyctl invalidate $K2
                    keyctl unlink $K1 @s
                    K3=$(keyctl add user k3 x @s)
                    keyctl clear @s
                    keyctl setperm @s 0x3f3f0000
                    # Both keys are now unreferenced (K1 revoked and unlinked, K2
                    # invalidated): the garbage collector destroys them, and each watcher
                    # gets the removal record and exits 0, as on the kernel.
                    wait $W2; echo "k2 watcher exit $?"
                    wait $W1; echo "k1 watcher exit $?"
                    waitfor '[ $(wc -l < $T/s.log) -ge 7 ] && [ $(wc -l < $T/links.log) -ge 4 ]'
                    kill $SW $LW
                    echo "serials $S $K1 $K2 $K3"
                    for f in s links k1 k2; do echo "== $f"; cat $T/$f.log; done
                    """
                let outcome = try runInSession(m, script, timeout: 90)
                #expect(outcome.status == 0, "\(outcome)")
                let out = outcome.stdout
                let lines = out.split(separator: "\n").map(String.init)
                let serials = try #require(lines.first { $0.hasPrefix("serials ") }).split(separator: " ").dropFirst().map(String.init)
                try #require(serials.count == 4, "\(out)")
                let (s, k1, k2, k3) = (serials[0], serials[1], serials[2], serials[3])
                func log(_ name: String) -> [String] {
                    guard let start = lines.firstIndex(of: "== \(name)") else { return [] }
                    return Array(lines[(start + 1)...].prefix { !$0.hasPrefix("== ") })
                }
                #expect(lines.contains("k2 watcher exit 0") && lines.contains("k1 watcher exit 0"),
                        "keyctl watch exits 0 on its watch's removal: \(out)")
                #expect(log("s") == ["\(s) link \(k1)", "\(s) link \(k2)", "\(s) link \(k1)", "\(s) unlk \(k1)",
                                     "\(s) link \(k3)", "\(s) clr", "\(s) attr"], "\(out)")
                #expect(log("links") == ["\(s) link \(k1)", "\(s) link \(k2)", "\(s) link \(k1)", "\(s) link \(k3)"], "\(out)")
                #expect(log("k1") == ["\(k1) upd", "\(k1) attr", "\(k1) attr", "\(k1) attr", "\(k1) rev", "\(k1) gc"], "\(out)")
                #expect(log("k2") == ["\(k2) inv", "\(k2) gc"], "\(out)")
            }
        }

        @Test("wqcat prints the same lines as keyctl watch for the same real key changes")
        func wqcatMatchesKeyctlWatch() throws {
            try withKeysMount { m throws in
                // One keyring, two watchers: keyutils' own through the compat library,
                // and a queue of the mount read by wqcat.
                let script = """
                    R=$(keyctl newring wqcat-ring @s)
                    LD_PRELOAD=$SHIM keyctl watch $R > $T/keyctl.log 2> $T/keyctl.err & W=$!
                    touch queues/kq; echo 1024 > queues/kq.size; echo "kq 1" > keys/$R/watches
                    waitfor "[ \\$(grep -c '' keys/$R/watches) -ge 2 ] && grep -q 'state watching' keys/$R/status"
                    K=$(keyctl add user wk v1 $R); keyctl update $K v2; keyctl link $K $R
                    keyctl setperm $R 0x3f3f0000; keyctl unlink $K $R; keyctl clear $R
                    # The ring's last link goes: both watchers get its removal, and
                    # keyctl watch exits on it.
                    keyctl unlink $R @s; wait $W; echo "keyctl status $?"
                    timeout -s KILL 10 wqcat --drain queues/kq > $T/wqcat.log; echo "wqcat status $?"
                    echo "== keyctl"; cat $T/keyctl.log; echo "== wqcat"; cat $T/wqcat.log
                    """
                let outcome = try runInSession(m, script, timeout: 60)
                #expect(outcome.status == 0, "\(outcome)")
                let parts = outcome.stdout.components(separatedBy: "== wqcat\n")
                try #require(parts.count == 2, "\(outcome)")
                let keyctl = try #require(parts[0].components(separatedBy: "== keyctl\n").last)
                #expect(outcome.stdout.contains("wqcat status 0"), "\(outcome)")
                #expect(outcome.stdout.contains("keyctl status 0"), "\(outcome)")
                #expect(keyctl.split(separator: "\n").map { $0.split(separator: " ").dropFirst().first ?? "" }
                        == ["link", "link", "attr", "unlk", "clr", "gc"], "\(keyctl)")
                #expect(parts[1] == keyctl, "wqcat: \(parts[1])keyctl watch: \(keyctl)")
            }
        }
    }
}
