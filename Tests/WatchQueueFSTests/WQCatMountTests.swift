import Foundation
import Testing

// README.md ("wqcat") on a real mount: keyutils' lines for key records, `<id> gc` for a
// removal, `-- LOSS --`, --drain and --count.
extension MountTests {
    @Suite("wqcat on a mount") struct WQCatOnMount {
        @Test("wqcat --drain prints key records, a removal and a loss as keyctl watch does")
        func drain() throws {
            try withMount { m throws in
                let out = try m.sh("""
                    touch queues/q; mkdir sources/k; echo 1 > sources/k/type; echo 4660 > sources/k/id
                    echo 'q 1' > sources/k/watches
                    echo '2 u32=305 u32=306' > sources/k/post
                    printf '0 u32=307 u32=0\\n3 u32=305 u32=306\\n7 u32=307 u32=0\\n' > sources/k/post
                    rmdir sources/k
                    timeout -s KILL 10 wqcat --drain queues/q; echo "status=$?"
                    timeout -s KILL 10 wqcat --drain queues/q; echo "status=$?"
                    """)
                #expect(out.stdout == """
                    305 link 306
                    307 inst
                    305 unlk 306
                    307 attr
                    4660 gc
                    status=0
                    status=0

                    """, "\(out)")
            }
        }

        @Test("wqcat --drain shows -- LOSS -- where records were dropped")
        func loss() throws {
            try withMount { m throws in
                let out = try m.sh("""
                    watch q k 1; echo key > sources/k/type; echo 2 > queues/q.size
                    printf '5 u32=1 u32=0\\n5 u32=2 u32=0\\n5 u32=3 u32=0\\n5 u32=4 u32=0\\n' > sources/k/post
                    $C read queues/q 16 nonblock >/dev/null
                    echo '6 u32=5 u32=0' > sources/k/post
                    echo '6 u32=6 u32=0' > sources/k/post
                    timeout -s KILL 10 wqcat --drain queues/q; echo "status=$?"
                    """)
                #expect(out.stdout == """
                    2 rev
                    -- LOSS --
                    5 inv
                    -- LOSS --
                    status=0

                    """, "\(out)")
            }
        }

        @Test("wqcat --count 1 started before a post prints that one record and exits 0")
        func countOne() throws {
            try withMount { m throws in
                let out = try m.sh("""
                    watch q k 3; echo 1 > sources/k/type
                    timeout -s KILL 10 wqcat --count 1 queues/q > $T/out 2>$T/err &
                    pid=$!
                    sleep 0.3
                    echo '1 u32=42 u32=0' > sources/k/post
                    echo '1 u32=43 u32=0' > sources/k/post
                    wait $pid; echo "status=$?"
                    cat $T/out $T/err
                    grep '^queued ' queues/q.status
                    """)
                #expect(out.stdout.hasPrefix("status=0\n42 upd\n"), "\(out)")
                // The second record stays queued unless wqcat had already read both.
                #expect(out.stdout.hasSuffix("queued 1\n") || out.stdout.hasSuffix("queued 0\n"), "\(out)")
            }
        }
    }
}
