import Foundation
import Testing

/// A 16-byte record as a default (type 256) source posts `"SUBTYPE u64=VALUE"`.
func userRecord(_ subtype: UInt32, _ value: UInt64, watchID: UInt32 = 1) -> [UInt8] {
    ABI.record(type: 256, subtype: subtype, watchID: watchID, payload: u64(value))
}

// DESIGN §1 and §2: the queue file. Reads give whole records, loss records where the
// kernel puts them, ENOBUFS, EAGAIN; blocked reads are deferred replies that
// interrupts, posts and rm answer; poll; write; ioctl.
extension MountTests {
    @Suite("queue file") struct QueueFile {
        @Test("read returns as many whole records as fit, never part of one")
        func wholeRecords() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    printf '1 u64=1\\n2 u64=2\\n3 u64=3\\n' > sources/s/post
                    stat -c %s queues/q
                    $C read queues/q 40 nonblock 3
                    """)
                #expect(out == """
                    48
                    \(hex(userRecord(1, 1), userRecord(2, 2)))
                    \(hex(userRecord(3, 3)))
                    errno=EAGAIN

                    """)
                // The same through dd and od: a 4096-byte read gets both records.
                let dd = try m.out("""
                    printf '4 u64=4\\n5 info=0x1234 u8=7\\n' > sources/s/post
                    dd if=queues/q of=$T/out bs=4096 count=1 2>/dev/null; hexof $T/out
                    """)
                #expect(dd == hex(userRecord(4, 4), ABI.record(type: 256, subtype: 5, watchID: 1, typeInfo: 0x1234, payload: [7])) + "\n")
                let status = try m.status("q")
                #expect(status["queued"] == 0 && status["bytes"] == 0 && status["read"] == 5 && status["posted"] == 5)
            }
        }

        @Test("a buffer smaller than the first record is ENOBUFS and consumes nothing")
        func noBufferSpace() throws {
            try withMount { m in
                let out = try m.sh("""
                    watch q s 1
                    echo '9 u64=77' > sources/s/post
                    dd if=queues/q bs=8 count=1 of=/dev/null
                    $C read queues/q 15 nonblock
                    $C read queues/q 16 nonblock
                    """)
                #expect(out.stderr.contains("No buffer space available"), "\(out)")
                #expect(out.stdout == "errno=ENOBUFS\n\(hex(userRecord(9, 77)))\n")
            }
        }

        @Test("an empty queue gives EAGAIN with O_NONBLOCK")
        func wouldBlock() throws {
            try withMount { m in
                let out = try m.sh("touch queues/q; $C read queues/q 4096 nonblock; dd if=queues/q iflag=nonblock bs=4096 count=1")
                #expect(out.stdout == "errno=EAGAIN\n")
                #expect(out.stderr.contains("Resource temporarily unavailable"), "\(out)")
            }
        }

        @Test("loss records: one per run of drops, after the marked record, as the kernel's pipe_read places it")
        func lossPlacement() throws {
            try withMount { m throws in
                // Size 2, four posts: 1 and 2 queued, 3 and 4 dropped: one loss record
                // after 2. As in the kernel's pipe_read, a loss owed after the last
                // queued record opens the next read rather than ending this one.
                let out = try m.out("""
                    watch q s 1
                    echo 2 > queues/q.size
                    printf '1 u64=1\\n1 u64=2\\n1 u64=3\\n1 u64=4\\n' > sources/s/post
                    grep -E '^(queued|lost|loss_pending) ' queues/q.status
                    $C read queues/q 4096 nonblock 3
                    """)
                #expect(out == """
                    queued 2
                    lost 2
                    loss_pending 0
                    \(hex(userRecord(1, 1), userRecord(1, 2)))
                    \(hex(ABI.loss()))
                    errno=EAGAIN

                    """)
                // Drop, success, drop: two loss records. The first follows 11 inside the
                // read because 13 comes after it; the second opens the next read.
                let two = try m.out("""
                    printf '1 u64=10\\n1 u64=11\\n1 u64=12\\n' > sources/s/post
                    $C read queues/q 16 nonblock
                    echo '1 u64=13' > sources/s/post
                    echo '1 u64=14' > sources/s/post
                    $C read queues/q 4096 nonblock 3
                    grep -E '^(lost|read|posted) ' queues/q.status
                    """)
                #expect(two == """
                    \(hex(userRecord(1, 10)))
                    \(hex(userRecord(1, 11), ABI.loss(), userRecord(1, 13)))
                    \(hex(ABI.loss()))
                    errno=EAGAIN
                    lost 4
                    posted 9
                    read 5

                    """)
            }
        }

        @Test("a loss record that did not fit opens the next read; alone it still makes poll readable")
        func pendingLoss() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    echo 1 > queues/q.size
                    printf '1 u64=1\\n1 u64=2\\n' > sources/s/post
                    $C read queues/q 16 nonblock
                    grep -E '^(queued|loss_pending) ' queues/q.status
                    $C poll queues/q 0
                    $C read queues/q 7 nonblock
                    echo '1 u64=3' > sources/s/post
                    $C read queues/q 4096 nonblock
                    $C poll queues/q 0
                    """)
                #expect(out == """
                    \(hex(userRecord(1, 1)))
                    queued 0
                    loss_pending 1
                    POLLIN
                    errno=ENOBUFS
                    \(hex(ABI.loss(), userRecord(1, 3)))
                    timeout

                    """)
                // Only the loss record, when nothing else is queued.
                let alone = try m.out("""
                    printf '1 u64=4\\n1 u64=5\\n' > sources/s/post
                    $C read queues/q 16 nonblock
                    $C read queues/q 4096 nonblock
                    $C read queues/q 4096 nonblock
                    """)
                #expect(alone == "\(hex(userRecord(1, 4)))\n\(hex(ABI.loss()))\nerrno=EAGAIN\n")
            }
        }

        @Test("64 readers blocked on 64 queues are deferred replies: the mount still answers, one post wakes them all")
        func manyBlockedReaders() throws {
            try withMount { m in
                let out = try m.sh("""
                    mkdir sources/s
                    for i in $(seq 0 63); do touch queues/q$i; echo "q$i $i"; done > sources/s/watches
                    for i in $(seq 0 63); do
                        timeout -s KILL 30 dd if=queues/q$i of=$T/out$i bs=4096 count=1 2>$T/err$i &
                    done
                    waitfor '[ "$(cat queues/q*.status | grep -c "^waiting 1$")" -eq 64 ]' || exit 1
                    # The filesystem still answers everything else at once.
                    timeout -s KILL 5 ls queues | wc -l
                    timeout -s KILL 5 cat README | head -1
                    timeout -s KILL 5 sh -c 'echo type=256 > queues/q0.filter && cat queues/q0.filter'
                    timeout -s KILL 5 sh -c 'echo 8 > queues/q1.size && cat queues/q1.size'
                    timeout -s KILL 5 cat sources/s/watches | wc -l
                    echo '7 u64=99' > sources/s/post
                    wait
                    for i in $(seq 0 63); do echo "$i $(hexof $T/out$i)"; done
                    """, timeout: 60)
                #expect(out.status == 0, "\(out)")
                var expected = """
                    256
                    wqfs: Linux watch queues (general notification queues) as files.
                    type=256 subtypes=all info=0x0/0x0
                    8
                    64

                    """
                for i in 0..<64 { expected += "\(i) \(hex(userRecord(7, 99, watchID: UInt32(i))))\n" }
                #expect(out.stdout == expected)
            }
        }

        @Test("several blocked readers of one queue: each record goes to exactly one of them")
        func competingReaders() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    for i in 1 2 3 4; do timeout -s KILL 20 $C read queues/q 4096 > $T/r$i & done
                    waitfor 'grep -qx "waiting 4" queues/q.status' || exit 1
                    for i in 1 2 3 4; do echo "1 u64=$i" > sources/s/post; done
                    wait
                    cat $T/r1 $T/r2 $T/r3 $T/r4 | sort
                    """)
                let expected = (1...4).map { hex(userRecord(1, UInt64($0))) }.sorted().joined(separator: "\n") + "\n"
                #expect(out == expected)
            }
        }

        @Test("a signal without SA_RESTART interrupts a blocked read with EINTR and loses nothing")
        func interrupt() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    timeout -s KILL 10 $C readint queues/q 4096 1
                    grep -E '^(waiting|queued) ' queues/q.status
                    echo '2 u64=42' > sources/s/post
                    $C read queues/q 4096 nonblock
                    timeout -s KILL 10 $C readint queues/q 4096 1
                    """)
                #expect(out == """
                    errno=EINTR
                    queued 0
                    waiting 0
                    \(hex(userRecord(2, 42)))
                    errno=EINTR

                    """)
            }
        }

        @Test("rm gives blocked readers end of file")
        func removeWakesReaders() throws {
            try withMount { m in
                let out = try m.out("""
                    touch queues/q
                    for i in 1 2 3; do timeout -s KILL 20 $C read queues/q 4096 > $T/r$i & done
                    timeout -s KILL 20 dd if=queues/q of=$T/dd bs=4096 count=1 2>/dev/null & 
                    waitfor 'grep -qx "waiting 4" queues/q.status' || exit 1
                    rm queues/q
                    wait
                    cat $T/r1 $T/r2 $T/r3; stat -c %s $T/dd
                    """)
                #expect(out == "eof\neof\neof\n0\n")
            }
        }

        @Test("poll: POLLIN with records, a timeout when empty, woken by a post, POLLHUP after rm")
        func poll() throws {
            try withMount { m in
                let out = try m.out("""
                    watch q s 1
                    $C poll queues/q 50
                    echo '1 u64=1' > sources/s/post
                    $C poll queues/q 0
                    $C read queues/q 4096 nonblock >/dev/null
                    timeout -s KILL 10 $C poll queues/q 5000 > $T/p &
                    sleep 0.3
                    echo '1 u64=2' > sources/s/post
                    wait; cat $T/p
                    $C read queues/q 4096 nonblock >/dev/null
                    timeout -s KILL 10 $C poll queues/q 5000 > $T/h &
                    sleep 0.3
                    rm queues/q
                    wait; cat $T/h
                    touch queues/r
                    $C pollhup queues/r
                    """)
                #expect(out == "timeout\nPOLLIN\nPOLLIN\nPOLLHUP\nPOLLHUP\neof\n")
            }
        }

        @Test("write on a queue is EXDEV")
        func write() throws {
            try withMount { m in
                let out = try m.sh("touch queues/q; $C write queues/q; /bin/echo x > queues/q")
                #expect(out.stdout == "errno=EXDEV\n")
                #expect(out.stderr.contains("Invalid cross-device link"), "\(out)")
                #expect(try m.status("q")["queued"] == 0)
            }
        }

        @Test("ioctl: FIONREAD after fstat, IOC_WATCH_QUEUE_SET_SIZE, ENOTTY otherwise")
        func ioctl() throws {
            try withMount(["default_size=8", "max_size=100"]) { m in
                #expect(ABI.setSizeCommand == 0x5760)
                // FIONREAD is answered by the kernel from the cached i_size of a regular
                // FUSE file: exact only once an fstat has refreshed it (the client does).
                let out = try m.out("""
                    watch q s 1
                    $C fionread queues/q
                    printf '1 u64=1\\n2 u32=2\\n' > sources/s/post
                    $C fionread queues/q
                    $C setsize queues/q 5; cat queues/q.size
                    $C setsize queues/q 0
                    $C setsize queues/q 101
                    $C setsize queues/q 100; cat queues/q.size
                    $C setsize queues/q 1
                    cat queues/q.size
                    $C ioctl queues/q 0x5761
                    $C ioctl queues/q 0x5401
                    $C ioctl queues/q.size 0x5760
                    $C read queues/q 4096 nonblock >/dev/null; $C fionread queues/q
                    """)
                #expect(out == """
                    fionread=0 size=0
                    fionread=28 size=28
                    ok
                    5
                    errno=EINVAL
                    errno=EINVAL
                    ok
                    100
                    errno=EBUSY
                    100
                    errno=ENOTTY
                    errno=ENOTTY
                    errno=ENOTTY
                    fionread=0 size=0

                    """)
                let errors = try m.text("errors")
                #expect(errors.contains("queues/q ioctl IOC_WATCH_QUEUE_SET_SIZE 0: EINVAL"), "\(errors)")
                #expect(errors.contains("IOC_WATCH_QUEUE_SET_SIZE 1: EBUSY"), "\(errors)")
            }
        }
    }
}
