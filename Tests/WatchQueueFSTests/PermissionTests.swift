import Foundation
import Testing

// DESIGN §2 "Permissions": with -o allow_other, the unprivileged user nobody (65534,
// via setpriv) is held to the mode bits by the kernel (default_permissions), and to
// read access on the queue by wqfs itself when adding a watch.
extension MountTests {
    @Suite("permissions") struct Permissions {
        @Test("nobody cannot read, configure or watch with root's queue, nor post to root's source")
        func nobodyIsRefused() throws {
            try withMount(["allow_other"]) { m throws in
                _ = try m.out("watch q rs 1; echo 'type=256' > queues/q.filter; echo '1 u64=1' > sources/rs/post")
                let out = try m.shAsNobody("""
                    id -u
                    $C read queues/q 4096 nonblock
                    cat queues/q
                    cat queues/q.status
                    echo 5 | $C put queues/q.size
                    echo 'type=1' | $C put queues/q.filter
                    (: > queues/q.filter)
                    echo '1 u64=2' | $C put sources/rs/post
                    $C put sources/rs/post.bin < /dev/null
                    echo 'q 2' | $C put sources/rs/watches
                    cat sources/rs/id sources/rs/type sources/rs/watches
                    mkdir sources/ns && echo 'q 1' | $C put sources/ns/watches
                    rm queues/q
                    rmdir sources/rs
                    chmod 666 queues/q
                    """)
                #expect(out.stdout == """
                    65534
                    errno=EACCES
                    errno=EACCES
                    errno=EACCES
                    errno=EACCES
                    errno=EACCES
                    errno=EACCES
                    \(try m.text("sources/rs/id"))256
                    q 1
                    errno=EACCES

                    """, "\(out)")
                for message in ["cat: queues/q: Permission denied", "cat: queues/q.status: Permission denied",
                                "cannot create queues/q.filter: Permission denied",
                                "rm: cannot remove 'queues/q': Operation not permitted",
                                "rmdir: failed to remove 'sources/rs': Operation not permitted",
                                "chmod: changing permissions of 'queues/q': Operation not permitted"] {
                    #expect(out.stderr.contains(message), "\(message)\n\(out)")
                }
                // Nothing changed, and the refused watch write is logged under nobody's uid.
                #expect(try m.text("queues/q.size") == "256\n")
                #expect(try m.text("queues/q.filter") == "type=256 subtypes=all info=0x0/0x0\n")
                #expect(try m.status("q")["queued"] == 1)
                #expect(try m.text("sources/ns/watches") == "")
                #expect(try m.out("stat -c '%u %g %a' sources/ns") == "65534 65534 755\n")
                let errors = try m.text("errors")
                #expect(errors.contains("uid=65534 sources/ns/watches 'q 1\\x0a': EACCES: "), "\(errors)")
            }
        }

        @Test("nobody uses its own queue and source; root's chown and chmod open root's queue to nobody")
        func ownObjectsAndGivenAway() throws {
            try withMount(["allow_other"]) { m throws in
                let own = try m.shAsNobody("""
                    touch queues/nq && mkdir sources/ns && echo 'nq 5' > sources/ns/watches
                    echo '3 u64=9' > sources/ns/post
                    echo 4 > queues/nq.size && echo 'type=256' > queues/nq.filter
                    $C read queues/nq 4096 nonblock
                    stat -c '%n %u %g %a' queues/nq queues/nq.size queues/nq.status sources/ns sources/ns/post
                    """)
                #expect(own.stdout == """
                    \(hex(userRecord(3, 9, watchID: 5)))
                    queues/nq 65534 65534 600
                    queues/nq.size 65534 65534 600
                    queues/nq.status 65534 65534 400
                    sources/ns 65534 65534 755
                    sources/ns/post 65534 65534 200

                    """, "\(own)")
                // Root may read anything, so it may watch nobody's queue from its own source.
                _ = try m.out("""
                    touch queues/q queues/r; mkdir sources/rs
                    echo 'nq 7' > sources/rs/watches && echo '1 u64=1' > sources/rs/post
                    chown 65534:65534 queues/q
                    chmod 604 queues/r
                    """)
                let given = try m.shAsNobody("""
                    $C read queues/nq 4096 nonblock
                    $C read queues/q 4096 nonblock
                    $C read queues/r 4096 nonblock
                    echo 3 | $C put queues/q.size
                    echo 'q 1' | $C put sources/ns/watches
                    echo 'r 2' | $C put sources/ns/watches
                    echo '4 u64=4' > sources/ns/post
                    """)
                #expect(given.stdout == """
                    \(hex(userRecord(1, 1, watchID: 7)))
                    errno=EAGAIN
                    errno=EAGAIN
                    errno=EACCES
                    ok
                    ok

                    """, "\(given)")
                #expect(try m.out("$C read queues/q 4096 nonblock; $C read queues/r 4096 nonblock") == """
                    \(hex(userRecord(4, 4, watchID: 1)))
                    \(hex(userRecord(4, 4, watchID: 2)))

                    """)
            }
        }

        @Test("without allow_other, other users cannot enter the mount at all")
        func noAllowOther() throws {
            try withMount { m throws in
                let out = try m.shAsNobody("ls \"$M\"/queues")
                #expect(out.status != 0 && out.stderr.contains("Permission denied"), "\(out)")
            }
        }
    }
}
