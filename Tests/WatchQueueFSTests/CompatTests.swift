import Foundation
import Testing

// DESIGN §7: programs written for the kernel's watch queues, run unmodified with
// LD_PRELOAD=libwqfs-compat.so. The compat client makes kernel calls only; `adopt`
// (a named queue that a test source watches, turned anonymous) stands in for a key
// watch until the key source exists.
extension MountTests {
    @Suite("compat library") struct Compat {
        /// `$COMPAT STEPS…` under the shim, on this mount.
        static let client = #"WQFS_MOUNT=$M LD_PRELOAD=$SHIM $COMPAT"#

        @Test("pipe2(O_EXCL): flags, no mount (ENOPKG), plain pipes untouched, the kernel's sizing and filter checks, EXDEV")
        func pipeAndIoctls() throws {
            try withMount { m in
                let out = try m.out("""
                    WQFS_MOUNT=/tmp LD_PRELOAD=$SHIM $COMPAT pipe2 0x80
                    \(Self.client) pipe2 0x480 plain
                    \(Self.client) pipe2 0x880 sh 'ls queues | wc -l' \
                        setsize 0 setsize 513 setsize 1 setsize 1 setsize 600 \
                        filter 0 0 filter 17 0 filter 1 1 1 0 0 filter 2 0 1 0 0 1 0x100 0 filter 1 0 1 0 0x1 \
                        filter 2 0 0 0 0 1 0 0 filter null write read 64 fionread poll 0
                    ls queues | wc -l
                    """)
                #expect(out == """
                    errno=ENOPKG
                    errno=EINVAL
                    plain ok
                    ok
                    0
                    sh=0
                    errno=EINVAL
                    errno=EINVAL
                    ok
                    errno=EBUSY
                    errno=EBUSY
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    ok
                    ok
                    errno=EXDEV
                    errno=EAGAIN
                    fionread=0
                    timeout
                    0

                    """)
            }
        }

        @Test("an anonymous queue: its name is free, posts before sizing vanish, capacity 32 for 1, FIONREAD, loss, poll, EOF once the write end closes")
        func recordsThroughAnAdoptedQueue() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    \(Self.client) adopt queues/q nonblock sh 'ls queues; cat sources/s/watches' \
                        sh 'echo 1 u64=1 > sources/s/post' fionread read 64 \
                        setsize 1 sh 'i=0; while [ $i -lt 33 ]; do echo "1 u64=$i"; i=$((i+1)); done > sources/s/post' \
                        fionread poll 0 read 4096 poll 0 read 64 sh 'touch queues/q && ls queues | tr "\\n" " " && echo' \
                        closew poll 2000 block read 64
                    """)
                let lines = out.split(separator: "\n").map(String.init)
                #expect(lines.count == 19, "\(out)")
                guard lines.count == 19 else { return }
                #expect(Array(lines[0...6]) == ["ok", "[anonymous] 1", "sh=0", "sh=0", "fionread=0", "errno=EAGAIN", "ok"])
                #expect(Array(lines[7...9]) == ["sh=0", "fionread=512", "POLLIN"])
                // 32 records of 16 bytes, the 33rd lost: the loss record opens the next read.
                #expect(lines[10].count == 32 * 32 && lines[10].hasPrefix("00010001100100000000000000000000"))
                #expect(lines[11] == "timeout") // a pending loss alone is not POLLIN
                #expect(lines[12] == "0000000108000000")
                #expect(Array(lines[13...18]) == ["q q.filter q.size q.status ", "sh=0", "ok", "POLLHUP", "ok", "eof"])
            }
        }

        @Test("the shim's SET_FILTER reaches the server: {type 0} admits only META; NULL removes it")
        func filterTranslation() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    \(Self.client) adopt queues/q nonblock setsize 32 filter 1 0 0 0 0 \
                        sh 'echo 1 u64=1 > sources/s/post' fionread filter null sh 'echo 1 u64=2 > sources/s/post' fionread
                    """)
                #expect(out == "ok\nok\nok\nsh=0\nfionread=0\nok\nsh=0\nfionread=16\n")
            }
        }

        @Test("a queue lives while any descriptor does: a child keeps it after the parent closed; the last close detaches its watches")
        func lifetimeAcrossFork() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    \(Self.client) adopt queues/q setsize 32 fork sh 'cat sources/s/watches' \
                        sh 'echo 2 u64=7 > sources/s/post' read 64
                    waitfor '[ -z "$(cat sources/s/watches)" ]' && echo detached
                    """)
                #expect(out == "ok\nok\nforked\n[anonymous] 1\nsh=0\nsh=0\n\(hex(userRecord(2, 7)))\ndetached\n")
            }
        }

        @Test("keyctl under the shim: notifications supported; a key that does not exist fails before the descriptor is looked at")
        func keyctl() throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/keyctl") else { return }
            try withMount { m in
                let supports = try m.sh("WQFS_MOUNT=$M LD_PRELOAD=$SHIM keyctl supports notify; echo status=$?; keyctl supports notify; echo status=$?")
                #expect(supports.stdout == "status=0\nstatus=1\n", "\(supports)")
                // (Watching for real: KeyWatchTests.)
                let watch = try m.sh("WQFS_MOUNT=$M LD_PRELOAD=$SHIM keyctl watch 12345; echo status=$?", timeout: 10)
                #expect(watch.stdout == "status=1\n", "\(watch)")
                #expect(watch.stderr.contains("Required key not available"), "\(watch)")
                #expect(try m.out("ls queues | wc -l") == "0\n")
            }
        }
    }
}
