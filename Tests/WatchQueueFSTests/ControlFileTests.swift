import Foundation
import Testing

// DESIGN §2: NAME.filter, NAME.size, a source's watches, post and post.bin. Every
// rejected write fails with its errno (checked with the test client's one-write
// `put`, or the shell's message) and is appended to MOUNT/errors.
extension MountTests {
    @Suite("control files") struct ControlFiles {
        @Test("NAME.filter: > replaces, >> appends, : > and none clear; reads back canonical text")
        func filterRedirections() throws {
            try withMount(["max_filters=3"]) { m throws in
                let out = try m.out("""
                    touch queues/q
                    echo 'type=256 subtypes=3-5,1,2' > queues/q.filter; cat queues/q.filter; echo --
                    echo 'type=key info=0x200/0xff00' >> queues/q.filter; cat queues/q.filter; echo --
                    echo 'type=0x10 subtypes=0,255' > queues/q.filter; cat queues/q.filter; echo --
                    : > queues/q.filter; cat queues/q.filter; echo --
                    printf 'type=1\\n# a comment\\n\\ntype=2 subtypes=all\\n' > queues/q.filter; cat queues/q.filter; echo --
                    echo none > queues/q.filter; cat queues/q.filter; echo --
                    echo 'type=7' >> queues/q.filter; cat queues/q.filter; echo --
                    truncate -s 0 queues/q.filter; cat queues/q.filter; echo --
                    { echo type=3; echo type=4; } > queues/q.filter; cat queues/q.filter
                    grep '^filters ' queues/q.status
                    """)
                #expect(out == """
                    type=256 subtypes=1-5 info=0x0/0x0
                    --
                    type=256 subtypes=1-5 info=0x0/0x0
                    type=1 subtypes=all info=0x200/0xff00
                    --
                    type=16 subtypes=0,255 info=0x0/0x0
                    --
                    none
                    --
                    type=1 subtypes=all info=0x0/0x0
                    type=2 subtypes=all info=0x0/0x0
                    --
                    none
                    --
                    type=7 subtypes=all info=0x0/0x0
                    --
                    none
                    --
                    type=3 subtypes=all info=0x0/0x0
                    type=4 subtypes=all info=0x0/0x0
                    filters 2

                    """)
                #expect(try m.text("errors") == "")
            }
        }

        @Test("NAME.filter rejections: EINVAL, nothing applied, logged in errors")
        func filterRejections() throws {
            try withMount(["max_filters=3"]) { m throws in
                _ = try m.out("touch queues/q; echo 'type=9' > queues/q.filter")
                let bad = [
                    "bogus", "type=0", "type=0x1000000", "type=1 subtypes=256", "type=1 subtypes=5-3",
                    "type=1 info=1/0", "type=1 info=0/0x7f", "type=1 info=0x100", "type=1 colour=red",
                    "type=1 type=2", "subtypes=1", "type=1\\ntype=2\\nbogus",
                    "type=1\\ntype=2\\ntype=3\\ntype=4",
                ]
                for input in bad {
                    #expect(try m.out("printf '\(input)\\n' | $C put queues/q.filter") == "errno=EINVAL\n", "\(input)")
                }
                // Appending past the limit is refused as well.
                #expect(try m.out("printf 'type=1\\ntype=2\\ntype=3\\n' | $C put queues/q.filter append") == "errno=EINVAL\n")
                #expect(try m.text("queues/q.filter") == "type=9 subtypes=all info=0x0/0x0\n")
                let shell = try m.sh("/bin/echo 'type=1 info=1/0' > queues/q.filter")
                #expect(shell.stderr.contains("Invalid argument"), "\(shell)")
                let lines = try m.text("errors").split(separator: "\n")
                #expect(lines.count == bad.count + 2)
                #expect(lines.first?.contains(" uid=0 queues/q.filter 'bogus\\x0a': EINVAL: ") == true, "\(lines)")
                #expect(lines.last?.contains(" uid=0 queues/q.filter 'type=1 info=1/0\\x0a': EINVAL: ") == true, "\(lines)")
            }
        }

        @Test("a filter keeps records by type, subtype and info (watch ID included); META records always pass")
        func filterEffect() throws {
            try withMount { m throws in
                // Keep subtypes 1 and 3 of type 256 delivered under watch ID 1 with
                // type info bit 0 set: info & 0x1ff00 == 0x10100.
                let out = try m.out("""
                    watch q a 1; watch q b 2
                    echo 'type=256 subtypes=1,3 info=0x10100/0x1ff00' > queues/q.filter
                    echo '1 info=1 u64=1' > sources/a/post
                    printf '1 info=1 u64=2\\n2 info=1 u64=3\\n3 info=1 u64=4\\n3 u64=5\\n' > sources/b/post
                    printf '3 info=1 u64=6\\n3 info=2 u64=7\\n2 info=1 u64=8\\n' > sources/a/post
                    cat sources/b/id
                    rmdir sources/b
                    $C read queues/q 4096 nonblock
                    grep -E '^(posted|filtered|queued|lost) ' queues/q.status
                    """)
                let lines = out.split(separator: "\n").map(String.init)
                try #require(lines.count == 6, "\(out)")
                let idB = try #require(UInt64(lines[0]))
                #expect(Array(lines.dropFirst()) == [
                    hex(ABI.record(type: 256, subtype: 1, watchID: 1, typeInfo: 1, payload: u64(1)),
                        ABI.record(type: 256, subtype: 3, watchID: 1, typeInfo: 1, payload: u64(6)),
                        ABI.removal(watchID: 2, objectID: idB)),
                    "queued 0", "lost 0", "posted 9", "filtered 6",
                ])
                // The removal record of b passes the filter: read the exact stream again
                // with b's id known.
                let again = try m.out("""
                    touch queues/r; mkdir sources/c; echo 77 > sources/c/id; echo 'r 9' > sources/c/watches
                    echo 'type=256 subtypes=1' > queues/r.filter
                    echo '2 u64=1' > sources/c/post
                    rmdir sources/c
                    $C read queues/r 4096 nonblock
                    """)
                #expect(again == hex(ABI.removal(watchID: 9, objectID: 77)) + "\n")
            }
        }

        @Test("NAME.size: resizes within 1..max_size; EINVAL outside or for garbage; EBUSY below the queued count")
        func size() throws {
            try withMount(["default_size=4", "max_size=50"]) { m throws in
                let out = try m.out("""
                    watch q s 1
                    cat queues/q.size
                    echo 50 > queues/q.size; cat queues/q.size
                    echo 0x10 > queues/q.size; cat queues/q.size
                    for v in 0 51 -1 abc '' '3 4' 99999999999999999999; do printf '%s\\n' "$v" | $C put queues/q.size; done
                    printf '1 u64=1\\n1 u64=2\\n1 u64=3\\n' > sources/s/post
                    echo 2 | $C put queues/q.size
                    echo 3 | $C put queues/q.size
                    grep -E '^(size|queued) ' queues/q.status
                    """)
                #expect(out == """
                    4
                    50
                    16
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EBUSY
                    ok
                    size 3
                    queued 3

                    """)
                let shell = try m.sh("/bin/echo 1 > queues/q.size")
                #expect(shell.stderr.contains("Device or resource busy"), "\(shell)")
                let errors = try m.text("errors").split(separator: "\n")
                #expect(errors.count == 9, "\(errors)")
                #expect(errors.last?.contains("queues/q.size '1\\x0a': EBUSY: ") == true, "\(errors)")
            }
        }

        @Test("watches: add, list, remove with a removal record; ENOENT, EBUSY, EINVAL, EAGAIN; all or nothing")
        func watches() throws {
            try withMount(["max_watches=3"]) { m throws in
                let out = try m.out("""
                    touch queues/q queues/r queues/x queues/y; mkdir sources/s; echo 0x1234 > sources/s/id
                    echo 'q 1' > sources/s/watches
                    echo 'r 255' >> sources/s/watches
                    cat sources/s/watches; echo --
                    echo 'q 2' | $C put sources/s/watches
                    echo 'nosuch 2' | $C put sources/s/watches
                    echo 'x 256' | $C put sources/s/watches
                    echo 'x' | $C put sources/s/watches
                    echo 'x.size 1' | $C put sources/s/watches
                    echo '!nosuch' | $C put sources/s/watches
                    echo '!x' | $C put sources/s/watches
                    printf 'x 3\\nnosuch 4\\n' | $C put sources/s/watches
                    printf 'x 3\\ny 4\\n' | $C put sources/s/watches
                    cat sources/s/watches; echo --
                    grep '^watches ' queues/q.status queues/x.status
                    echo '!q' > sources/s/watches
                    cat sources/s/watches; echo --
                    $C expect-removal queues/q 1 0x1234
                    echo '!q' | $C put sources/s/watches
                    printf 'x 3\\ny 4\\n' | $C put sources/s/watches
                    cat sources/s/watches
                    """)
                #expect(out == """
                    q 1
                    r 255
                    --
                    errno=EBUSY
                    errno=ENOENT
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=ENOENT
                    errno=ENOENT
                    errno=ENOENT
                    errno=EAGAIN
                    q 1
                    r 255
                    --
                    queues/q.status:watches 1
                    queues/x.status:watches 0
                    r 255
                    --
                    match
                    errno=ENOENT
                    ok
                    r 255
                    x 3
                    y 4

                    """)
                let errors = try m.text("errors").split(separator: "\n")
                #expect(errors.count == 10, "\(errors)")
                #expect(errors.contains { $0.contains("sources/s/watches 'x 3\\x0ay 4\\x0a': EAGAIN: ") })
            }
        }

        @Test("rmdir of a watched source sends each queue a 16-byte removal record matching <linux/watch_queue.h>")
        func removalRecords() throws {
            try withMount { m throws in
                let out = try m.out("""
                    watch q1 s 7; watch q2 s 200; watch q2 t 3
                    echo '1 u64=5' > sources/s/post
                    cat sources/s/id
                    rmdir sources/s
                    ls sources
                    $C read queues/q1 4096 nonblock
                    """)
                let lines = out.split(separator: "\n").map(String.init)
                try #require(lines.count == 3, "\(out)")
                let id = try #require(UInt64(lines[0]))
                #expect(lines[1] == "t")
                #expect(lines[2] == hex(userRecord(1, 5, watchID: 7), ABI.removal(watchID: 7, objectID: id)))
                #expect(ABI.removal(watchID: 7, objectID: id).count == 16)
                // The same bytes checked by C against the kernel's struct.
                let c = try m.out("""
                    $C read queues/q2 16 nonblock >/dev/null
                    $C expect-removal queues/q2 200 \(id)
                    cat sources/t/watches
                    rm queues/q2; cat sources/t/watches; echo --
                    """)
                #expect(c == "match\nq2 3\n--\n")
            }
        }

        @Test("post: every item packs little-endian; many lines post all or nothing; EMSGSIZE; errors logged")
        func post() throws {
            try withMount { m throws in
                let out = try m.out("""
                    watch q s 4
                    echo '5 info=0xbeef u8=1 u16=0x0302 u32=0x07060504 u64=8 hex=DEADbeef str=hi there' > sources/s/post
                    echo 0 > sources/s/post
                    $C read queues/q 4096 nonblock
                    printf '1 u8=1\\n2 u8=2\\n3 bogus=3\\n4 u8=4\\n' | $C put sources/s/post
                    printf '1 u8=1\\n256\\n' | $C put sources/s/post
                    echo '1 u8=256' | $C put sources/s/post
                    echo '1 hex=abc' | $C put sources/s/post
                    echo '1 u8=1 info=2' | $C put sources/s/post
                    echo '-1' | $C put sources/s/post
                    echo "1 hex=$(printf '%0238d' 0)" | $C put sources/s/post
                    echo "1 hex=$(printf '%0240d' 0)" | $C put sources/s/post
                    grep -E '^(posted|queued) ' queues/q.status
                    """)
                let first = ABI.record(type: 256, subtype: 5, watchID: 4, typeInfo: 0xbeef,
                                       payload: [1, 2, 3, 4, 5, 6, 7] + u64(8) + [0xde, 0xad, 0xbe, 0xef] + Array("hi there".utf8))
                #expect(out == """
                    \(hex(first, ABI.record(type: 256, subtype: 0, watchID: 4)))
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    errno=EINVAL
                    ok
                    errno=EMSGSIZE
                    queued 1
                    posted 3

                    """)
                let errors = try m.text("errors").split(separator: "\n")
                #expect(errors.count == 7, "\(errors)")
                #expect(errors.first?.contains("sources/s/post '1 u8=1\\x0a2 u8=2\\x0a3 bogus=3\\x0a4 u8=4\\x0a': EINVAL: line 3: ") == true, "\(errors)")
                #expect(errors.last?.contains(": EMSGSIZE: ") == true, "\(errors)")
                let shell = try m.sh("/bin/echo 'x' > sources/s/post")
                #expect(shell.stderr.contains("Invalid argument"), "\(shell)")
            }
        }

        @Test("a source of type 1 posts key records as <linux/watch_queue.h> lays them out")
        func keyRecords() throws {
            try withMount { m throws in
                let out = try m.out("""
                    watch q k 1
                    echo 1 > sources/k/type
                    echo '2 u32=305 u32=306' > sources/k/post
                    $C read queues/q 4096 nonblock
                    """)
                #expect(out == hex(ABI.key(subtype: 2, watchID: 1, keyID: 305, aux: 306)) + "\n")
            }
        }

        @Test("post.bin: several packed records in one write; type checked, watch-ID bits ignored, malformed EINVAL")
        func postBinary() throws {
            try withMount { m throws in
                // Records as read() returns them; the watch ID bits (0x55) are replaced.
                let a = ABI.record(type: 256, subtype: 1, watchID: 0x55, payload: u64(1))
                let b = ABI.record(type: 256, subtype: 2, watchID: 0, typeInfo: 0xabcd)
                let c = ABI.record(type: 256, subtype: 3, watchID: 0, payload: [UInt8](repeating: 9, count: 119))
                let wrongType = ABI.record(type: 257, subtype: 1, watchID: 0)
                var short = ABI.record(type: 256, subtype: 1, watchID: 0)
                short[4] = 4 // length 4
                let files: [(String, [UInt8])] = [
                    ("good", a + b + c), ("wrongtype", a + wrongType), ("short", short),
                    ("past", a + Array(ABI.record(type: 256, subtype: 1, watchID: 0, payload: u64(2)).prefix(12))),
                    ("stray", a + [1, 2, 3]),
                ]
                for (name, bytes) in files {
                    try Data(bytes).write(to: URL(fileURLWithPath: m.scratch + "/" + name))
                }
                let out = try m.out("""
                    watch q s 6
                    for f in good wrongtype short; do $C put sources/s/post.bin < $T/$f; done
                    # A record cut short is held for the rest; close finds it unfinished.
                    for f in past stray; do $C split sources/s/post.bin 4096 < $T/$f; done
                    $C read queues/q 4096 nonblock
                    grep '^posted ' queues/q.status
                    echo 1 > sources/s/type
                    $C put sources/s/post.bin < $T/good
                    """)
                let delivered = ABI.record(type: 256, subtype: 1, watchID: 6, payload: u64(1))
                    + ABI.record(type: 256, subtype: 2, watchID: 6, typeInfo: 0xabcd)
                    + ABI.record(type: 256, subtype: 3, watchID: 6, payload: [UInt8](repeating: 9, count: 119))
                    // past and stray each begin with a whole record: their writes apply it.
                    + ABI.record(type: 256, subtype: 1, watchID: 6, payload: u64(1))
                    + ABI.record(type: 256, subtype: 1, watchID: 6, payload: u64(1))
                #expect(out == """
                    ok
                    errno=EINVAL
                    errno=EINVAL
                    writes=1
                    close: errno=EINVAL
                    writes=1
                    close: errno=EINVAL
                    \(hex(delivered))
                    posted 5
                    errno=EINVAL

                    """)
                #expect(try m.text("errors").split(separator: "\n").count == 5)
            }
        }

        @Test("errors lists rejected writes newest last as TIME uid=N PATH 'INPUT': ERRNAME: reason")
        func errorsFile() throws {
            try withMount { m throws in
                _ = try m.sh("""
                    touch queues/q; mkdir sources/s
                    echo 0 | $C put queues/q.size
                    echo 'zz 1' | $C put sources/s/watches
                    echo 'x' | $C put sources/s/id
                    """)
                let text = try m.text("errors")
                let lines = text.split(separator: "\n").map(String.init)
                #expect(lines.count == 3)
                let pattern = #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ uid=0 (\S+) '([^']*)': ([A-Z]+): (.+)$/#
                let parsed = lines.compactMap { line in (try? pattern.wholeMatch(in: line)).map { ($0.1, $0.2, $0.3) } }
                #expect(parsed.count == 3, "\(text)")
                #expect(parsed.map { "\($0.0) \($0.1) \($0.2)" } == [
                    "queues/q.size 0\\x0a EINVAL", "sources/s/watches zz 1\\x0a ENOENT", "sources/s/id x\\x0a EINVAL",
                ])
                #expect(try m.out("stat -c %s errors") == "\(text.utf8.count)\n")
            }
        }
    }
}
