import Foundation
import Testing

// The issue's checks for programs written for the kernel's API (COMPAT.md "The
// kernel sample and LTP"): wqfs-kernel-api-client makes LTP's calls against
// <linux/watch_queue.h> and <linux/keyctl.h>, under LD_PRELOAD=libwqfs-compat.so and
// `keyctl session -` (a fresh @s per run), and the records it reads must be the bytes
// the kernel would post, built here with the header's structs (ABI). The mount runs
// the keys observer (sources=keys; the fixture's default is no system sources).
extension MountTests {
    @Suite("programs written for the kernel's API") struct KernelAPI {
        /// The client under the shim, on this mount, in a fresh session keyring.
        static let client = #"WQFS_MOUNT=$M LD_PRELOAD=$SHIM keyctl session - $KAPI"#

        /// Why these tests cannot run here, or nil: they need keyutils and the keys
        /// observer on BPF (the comparing fallback sees changes a second late and
        /// misses most of them, so the kernel's exact records are out of its reach).
        static func skipReason(_ m: Mount) throws -> String? {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/keyctl") else {
                return "keyutils (/usr/bin/keyctl) is missing"
            }
            let readme = try m.text("README")
            guard readme.contains("keys: ready, BPF") else {
                let line = readme.split(separator: "\n").first { $0.hasPrefix("keys:") } ?? "no keys: line"
                return "the keys observer is not using BPF (\(line))"
            }
            return nil
        }

        /// Runs `body` on a mount with the keys observer, or says why not and returns.
        static func withKeysMount(_ options: [String] = [], test: String = #function, _ body: (Mount) throws -> Void) throws {
            try withMount(["sources=keys"] + options) { m in
                if let reason = try skipReason(m) {
                    FileHandle.standardError.write(Data("KernelAPI \(test): skipped: \(reason)\n".utf8))
                    return
                }
                try body(m)
            }
        }

        /// `key=K session=S` from the client's output.
        static func serials(_ line: String) -> [String: UInt32] {
            var result: [String: UInt32] = [:]
            for field in line.split(separator: " ") {
                let parts = field.split(separator: "=")
                if parts.count == 2, let value = UInt32(parts[1]) { result[String(parts[0])] = value }
            }
            return result
        }

        /// One LTP-style check: the record the operation posts, and which key or
        /// keyring (by watch ID) it is posted on.
        enum Posted { case onKey, onSession }

        @Test("LTP wqueue01-07: one operation, one blocking 433-byte read, exactly the one record the kernel posts",
              arguments: [
                  // (operation, subtype, posted on, aux is the key, destroys the key)
                  ("update", 1, Posted.onKey, false, false),
                  ("unlink", 3, Posted.onSession, true, true),
                  ("revoke", 5, Posted.onKey, false, false),
                  ("link", 2, Posted.onSession, true, false),
                  ("invalidate", 6, Posted.onKey, false, true),
                  ("clear", 4, Posted.onSession, false, true),
                  ("setperm", 7, Posted.onKey, false, false),
              ] as [(String, UInt32, Posted, Bool, Bool)])
        func oneOperation(_ operation: String, subtype: UInt32, posted: Posted, auxIsKey: Bool, destroys: Bool) throws {
            try Self.withKeysMount(test: "oneOperation(\(operation))") { m in
                let outcome = try m.sh("\(Self.client) op \(operation)", timeout: 30)
                #expect(outcome.status == 0, "\(outcome)")
                let lines = outcome.lines
                guard let first = lines.first, let key = Self.serials(first)["key"], let session = Self.serials(first)["session"] else {
                    Issue.record("no serials: \(outcome)")
                    return
                }
                let record = posted == .onKey
                    ? ABI.key(subtype: subtype, watchID: 1, keyID: key, aux: 0)
                    : ABI.key(subtype: subtype, watchID: 2, keyID: session, aux: auxIsKey ? key : 0)
                // A destroyed key's removal record comes after, from the garbage
                // collector as on the kernel, and it alone; then nothing more.
                let expected = ["key=\(key) session=\(session)", "read " + hex(record)]
                    + (destroys ? ["read " + hex(ABI.removal(watchID: 1, objectID: UInt64(key)))] : [])
                    + ["fionread=0"]
                #expect(lines == expected, "\(outcome)")
            }
        }

        @Test("LTP wqueue09: size 1 holds 32 records; 64 updates read as 432 bytes, 80, then the 8-byte loss record")
        func sizeOneLoss() throws {
            try Self.withKeysMount { m in
                let outcome = try m.sh("\(Self.client) loss", timeout: 30)
                #expect(outcome.status == 0, "\(outcome)")
                // The key's serial is the first record's: every record is an update of it.
                let reads = outcome.lines.filter { $0.hasPrefix("read ") }.map { String($0.dropFirst(5)) }
                #expect(reads.count == 3, "\(outcome)")
                guard reads.count == 3, reads[0].count >= 32 else { return }
                let bytes = stride(from: 16, to: 24, by: 2).map { UInt8(reads[0].dropFirst($0).prefix(2), radix: 16) ?? 0 }
                let key = bytes.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                let update = hex(ABI.key(subtype: 1, watchID: 1, keyID: key, aux: 0))
                #expect(reads[0] == String(repeating: update, count: 27))
                #expect(reads[1] == String(repeating: update, count: 5))
                #expect(reads[2] == hex(ABI.loss()))
            }
        }

        @Test("LTP wqueue08: removing a watch (ID -1) posts the 16-byte removal record with the serial")
        func removal() throws {
            try Self.withKeysMount { m in
                let outcome = try m.sh("\(Self.client) remove", timeout: 30)
                #expect(outcome.status == 0, "\(outcome)")
                guard let key = outcome.lines.first.flatMap({ Self.serials($0)["key"] }) else {
                    Issue.record("no serial: \(outcome)")
                    return
                }
                #expect(outcome.lines == ["key=\(key)", "read " + hex(ABI.removal(watchID: 1, objectID: UInt64(key)))], "\(outcome)")
            }
        }

        @Test("the error paths of KEYCTL_WATCH_KEY and the ioctls: the kernel's errno, in the kernel's order")
        func errorPaths() throws {
            try Self.withKeysMount { m in
                let outcome = try m.sh("\(Self.client) errors", timeout: 30)
                #expect(outcome.status == 0, "\(outcome)")
                #expect(outcome.lines == [
                    "setsize-0 errno=EINVAL", "setsize-513 errno=EINVAL", "setsize-256 ok", "setsize-again errno=EBUSY",
                    // nr 0 through a struct is EINVAL (NULL removes), as are 17 entries,
                    // the reserved word, filter bits outside the mask and a mask on the
                    // length; entries of type 2 are accepted and ignored.
                    "filter-nr-0 errno=EINVAL", "filter-nr-17 errno=EINVAL", "filter-reserved errno=EINVAL",
                    "filter-outside-mask errno=EINVAL", "filter-mask-length errno=EINVAL", "filter-type-2 ok",
                    "filter-16 ok", "filter-null ok",
                    "id-256 errno=EINVAL", "id-minus-2 errno=EINVAL", "key-0 errno=EINVAL",
                    "key-missing errno=ENOKEY", "key-revoked errno=EKEYREVOKED",
                    "fd-dev-null errno=EINVAL", "fd-closed errno=EINVAL",
                    "id-256-key-missing errno=EINVAL", "key-missing-fd-dev-null errno=ENOKEY",
                    "remove-unwatched errno=EBADSLT", "watch ok", "watch-same-id errno=EBUSY", "watch-other-id errno=EBUSY",
                    "watch-session ok", "remove ok", "remove-again errno=EBADSLT",
                ], "\(outcome)")
            }
        }

        @Test("a key the caller may not View: EACCES, through the shim and from the server when the shim is bypassed; its own @u (-4) it may watch")
        func noView() throws {
            try Self.withKeysMount(["allow_other"]) { m in
                // Root's key, possessor rights only; nobody runs the client.
                let outcome = try m.sh("""
                    keyctl session - sh -c '
                        k=$(keyctl add user wqfs-secret v @s) && keyctl setperm $k 0x3f000000 &&
                        WQFS_MOUNT=$M LD_PRELOAD=$SHIM setpriv --reuid=65534 --regid=65534 --clear-groups $KAPI watch $k &&
                        WQFS_MOUNT=$M LD_PRELOAD=$SHIM setpriv --reuid=65534 --regid=65534 --clear-groups $KAPI rawwatch $k &&
                        WQFS_MOUNT=$M LD_PRELOAD=$SHIM setpriv --reuid=65534 --regid=65534 --clear-groups $KAPI watch -4'
                    """, timeout: 30)
                #expect(outcome.lines == ["watch errno=EACCES", "rawwatch errno=EACCES", "watch ok"], "\(outcome)")
            }
        }

        @Test("hostile: nobody's queue on nobody's own @s sees none of root's key operations, only its own")
        func quietSession() throws {
            try Self.withKeysMount(["allow_other"]) { m in
                let outcome = try m.sh("""
                    WQFS_MOUNT=$M LD_PRELOAD=$SHIM setpriv --reuid=65534 --regid=65534 --clear-groups \
                        keyctl session - $KAPI quiet $T/go > $T/quiet 2>$T/quiet.err &
                    waitfor 'grep -q ready $T/quiet || grep -q fatal $T/quiet'
                    keyctl session - sh -c '
                        k=$(keyctl add user a b @s); keyctl update $k c; keyctl link $k @s; keyctl setperm $k 0x3f3f0000
                        keyctl add user a d @s >/dev/null; keyctl unlink $k @s; keyctl add user z y @s >/dev/null
                        keyctl clear @s; keyctl revoke @s' >/dev/null
                    keyctl add user root-user-key v @u >/dev/null
                    touch $T/go
                    wait
                    cat $T/quiet
                    """, timeout: 30)
                let lines = outcome.lines
                guard lines.count == 4, let serials = Optional(Self.serials(lines[1])), let key = serials["key"], let session = serials["session"] else {
                    Issue.record("\(outcome)")
                    return
                }
                #expect(lines == ["ready", "key=\(key) session=\(session)",
                                  "read " + hex(ABI.key(subtype: 2, watchID: 2, keyID: session, aux: key)), "fionread=0"], "\(outcome)")
            }
        }

        @Test("keyutils: keyctl watch_session logs one line per record in keyctl watch's format; the removal goes to GCLOG")
        func keyutilsWatchSession() throws {
            try Self.withKeysMount { m in
                let outcome = try m.sh("""
                    WQFS_MOUNT=$M LD_PRELOAD=$SHIM keyctl watch_session -n test $T/notify $T/gc 3 sh -c '
                        k=$(keyctl add user a b @s)
                        keyctl watch_add 3 $k
                        keyctl update $k c
                        keyctl setperm $k 0x3f3f0000
                        keyctl link $k @s
                        keyctl watch_rm 3 $k
                        keyctl update $k d
                        keyctl watch_sync 3
                        echo "$(keyctl id @s) $k"' 2>/dev/null
                    """, timeout: 30)
                #expect(outcome.status == 0, "\(outcome)")
                let ids = outcome.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
                guard ids.count == 2 else {
                    Issue.record("\(outcome)")
                    return
                }
                let (session, key) = (ids[0], ids[1])
                // The logger ends on its own once the last descriptor on the queue
                // closes ("Monitoring terminated"): wait for it, and ignore that line.
                _ = try m.sh("waitfor 'grep -q terminated $T/notify && grep -q terminated $T/gc'")
                func log(_ name: String) throws -> [String] {
                    try String(contentsOfFile: m.scratch + "/" + name, encoding: .utf8)
                        .split(separator: "\n").map(String.init).filter { $0 != "Monitoring terminated" }
                }
                // watch_session's own watch on the session (ID 1) sees the link of the
                // new key and the second link; the key's watch (ID 2) its update and
                // setperm, not the update after watch_rm.
                #expect(try log("notify") == ["\(session) link \(key)", "\(key) upd", "\(key) attr", "\(session) link \(key)"])
                #expect(try log("gc") == ["\(key) gc"])
            }
        }
    }
}
