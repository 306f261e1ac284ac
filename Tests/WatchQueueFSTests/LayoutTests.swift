import Foundation
import Testing

// DESIGN §2: every path of the layout, its modes, owners and sizes, what creates and
// removes it, and the errno of everything that is refused.
extension MountTests {
    @Suite("layout") struct Layout {
        @Test("the root holds README, errors, keys/, queues/ and sources/ with their modes")
        func root() throws {
            try withMount { m throws in
                #expect(try m.out("ls -A") == "README\nerrors\nkeys\nqueues\nsources\n")
                #expect(try m.out("stat -c '%n %a %U %G %F' README errors keys queues sources . | sed 's/regular empty file/regular file/'") == """
                    README 444 root root regular file
                    errors 444 root root regular file
                    keys 755 root root directory
                    queues 1777 root root directory
                    sources 1777 root root directory
                    . 755 root root directory

                    """)
                let readme = try m.text("README")
                for needle in ["queues/NAME.size", "queues/NAME.filter", "queues/NAME.status", "sources/NAME/post.bin",
                               "sources/NAME/watches", "IOC_WATCH_QUEUE_SET_SIZE"] {
                    #expect(readme.contains(needle), "README lacks \(needle)")
                }
                #expect(try m.out("stat -c %s README") == "\(readme.utf8.count)\n")
                #expect(try m.text("errors") == "")
                #expect(try m.out("ls -A keys queues sources") == "keys:\n\nqueues:\n\nsources:\n")
            }
        }

        @Test("touch and O_CREAT make a queue with companions; rm removes all four")
        func queueLifecycle() throws {
            try withMount(["default_size=8"]) { m throws in
                #expect(try m.out("touch queues/q && : > queues/r && ls queues") == """
                    q
                    q.filter
                    q.size
                    q.status
                    r
                    r.filter
                    r.size
                    r.status

                    """)
                #expect(try m.out("stat -c '%n %a %U %G %s' queues/q queues/q.size queues/q.filter") == """
                    queues/q 600 root root 0
                    queues/q.size 600 root root 2
                    queues/q.filter 600 root root 5

                    """)
                #expect(try m.out("stat -c '%n %a %U %G' queues/q.status") == "queues/q.status 400 root root\n")
                #expect(try m.text("queues/q.size") == "8\n")
                #expect(try m.text("queues/q.filter") == "none\n")
                let status = try m.status("q")
                for key in ["size", "queued", "bytes", "lost", "watches", "readers"] {
                    #expect(status[key] != nil, "status lacks \(key)")
                }
                #expect(status["size"] == 8 && status["queued"] == 0 && status["bytes"] == 0 && status["lost"] == 0)
                // touch of an existing queue is fine and changes nothing.
                #expect(try m.sh("touch queues/q").status == 0)
                // O_CREAT|O_EXCL on an existing queue: EEXIST.
                #expect(try m.sh("set -C; : > queues/q").stderr.contains("exists"))
                #expect(try m.out("rm queues/q && ls queues") == "r\nr.filter\nr.size\nr.status\n")
                #expect(try m.sh("cat queues/q.size").stderr.contains("No such file or directory"))
                #expect(try m.sh("rm queues/q").stderr.contains("No such file or directory"))
            }
        }

        @Test("mkdir makes a source with id, type, post, post.bin, watches; rmdir removes it though it holds files")
        func sourceLifecycle() throws {
            try withMount { m throws in
                #expect(try m.out("umask 022; mkdir sources/s && mkdir -m 0750 sources/t && ls sources sources/s") == """
                    sources:
                    s
                    t

                    sources/s:
                    id
                    post
                    post.bin
                    type
                    watches

                    """)
                #expect(try m.out("cd sources/s && stat -c '%n %a %U %G' . id type watches post post.bin ../t") == """
                    . 755 root root
                    id 644 root root
                    type 644 root root
                    watches 644 root root
                    post 200 root root
                    post.bin 200 root root
                    ../t 750 root root

                    """)
                let idS = try m.text("sources/s/id"), idT = try m.text("sources/t/id")
                #expect(UInt64(idS.dropLast()) != nil && idS.hasSuffix("\n"))
                #expect(idS != idT, "two sources share an id")
                // The default type is a user type, never META (0) or key (1).
                let type = try m.text("sources/s/type")
                #expect(type == "256\n")
                #expect(try m.text("sources/s/watches") == "")
                #expect(try m.out("stat -c %s sources/s/id sources/s/type") == "\(idS.utf8.count)\n\(type.utf8.count)\n")
                // type accepts a number, 0x…, or a known name.
                #expect(try m.out("echo key > sources/s/type && cat sources/s/type") == "1\n")
                #expect(try m.out("echo 0x1234 > sources/s/type && cat sources/s/type") == "4660\n")
                #expect(try m.out("echo user > sources/s/type && cat sources/s/type") == "256\n")
                for bad in ["0", "0x1000000", "nope", "-1"] {
                    #expect(try m.out("echo \(bad) | $C put sources/s/type") == "errno=EINVAL\n", "type \(bad)")
                }
                // id is writable while unwatched; unique.
                #expect(try m.out("echo 4242 > sources/s/id && cat sources/s/id") == "4242\n")
                #expect(try m.out("echo 4242 | $C put sources/t/id") == "errno=EEXIST\n")
                #expect(try m.out("echo x | $C put sources/t/id") == "errno=EINVAL\n")
                #expect(try m.out("touch queues/q && echo 'q 1' > sources/s/watches && echo 7 | $C put sources/s/id") == "errno=EBUSY\n")
                #expect(try m.out("rmdir sources/s sources/t && ls -A sources") == "")
                #expect(try m.sh("rmdir sources/s").stderr.contains("No such file or directory"))
            }
        }

        @Test("bad names are EINVAL, for queues and sources")
        func badNames() throws {
            try withMount { m throws in
                let long = String(repeating: "a", count: 65)
                for name in ["a.b", "a b", "x.size", "é", long] {
                    let q = try m.sh("touch 'queues/\(name)'")
                    #expect(q.stderr.contains("Invalid argument"), "queue \(name): \(q)")
                    let s = try m.sh("mkdir 'sources/\(name)'")
                    #expect(s.stderr.contains("Invalid argument"), "source \(name): \(s)")
                }
                let ok = String(repeating: "Z", count: 64)
                #expect(try m.sh("touch queues/\(ok) 'queues/a_b-c@d:e' && mkdir sources/\(ok) 'sources/a_b-c@d:e'").status == 0)
                #expect(try m.out("ls -A queues | grep -c -v '\\.'") == "2\n")
                let errors = try m.text("errors")
                #expect(errors.contains("queues/a.b create: EINVAL"))
                #expect(errors.contains("sources/a.b mkdir: EINVAL"))
            }
        }

        @Test("companions and fixed files cannot be created, removed or renamed")
        func refused() throws {
            try withMount { m throws in
                _ = try m.out("touch queues/q queues/r && mkdir sources/s")
                let cases: [(String, String)] = [
                    ("rm queues/q.size", "Operation not permitted"),
                    ("rm queues/q.filter", "Operation not permitted"),
                    ("rm -f queues/q.status", "Operation not permitted"),
                    ("touch queues/nosuch.size", "Invalid argument"),
                    ("rm README", "Operation not permitted"),
                    ("rm errors", "Operation not permitted"),
                    ("rmdir queues", "Operation not permitted"),
                    ("rmdir sources", "Operation not permitted"),
                    ("rm sources/s/id", "Operation not permitted"),
                    ("rm sources/s/post", "Operation not permitted"),
                    ("touch sources/s/extra", "Operation not permitted"),
                    ("touch sources/file", "Operation not permitted"),
                    ("touch newfile", "Operation not permitted"),
                    ("mkdir queues/d", "Operation not permitted"),
                    ("mkdir sources/s/d", "Operation not permitted"),
                    ("mkdir d", "Operation not permitted"),
                    ("mkfifo queues/f", "Operation not permitted"),
                    ("mv queues/q queues/q2", "Operation not permitted"),
                    ("mv queues/q.size queues/r.size", "Operation not permitted"),
                    ("mv sources/s sources/t", "Operation not permitted"),
                    ("mv -T queues/q queues/r", "Operation not permitted"),
                    ("ln queues/q queues/hard", "Operation not permitted"),
                    ("ln -s /etc/passwd queues/sym", "Operation not permitted"),
                    ("ln -s q sources/s/sym", "Operation not permitted"),
                    ("ln -s x sym", "Operation not permitted"),
                    ("rm queues/nosuch", "No such file or directory"),
                    ("rmdir sources/nosuch", "No such file or directory"),
                    ("mv queues/nosuch queues/x", "No such file or directory"),
                ]
                for (command, message) in cases {
                    let outcome = try m.sh(command)
                    #expect(outcome.status != 0 && outcome.stderr.contains(message), "\(command): \(outcome)")
                }
                // Each refusal says why in errors, as a rejected write does.
                let errors = try m.text("errors")
                for line in ["queues/sym symlink to '/etc/passwd': EPERM: wqfs holds no symbolic links",
                             "queues/hard link: EPERM: wqfs holds no hard links",
                             "queues/q rename to 'q2': EPERM: names never change",
                             "queues/q.size unlink: EPERM: only a queue can be removed",
                             "queues/f mknod: EPERM: only regular files (queues) can be made",
                             "d mkdir: EPERM: directories are made only in sources/"] {
                    #expect(errors.contains(" uid=0 " + line), "\(line) in \(errors)")
                }
                for missing in ["queues/nosuch unlink", "sources/nosuch rmdir", "queues/nosuch rename"] {
                    #expect(!errors.contains(missing), "a missing name is ENOENT, not a refusal: \(errors)")
                }
                // Read-only files stay read-only, even for root.
                for file in ["README", "errors", "queues/q.status"] {
                    #expect(try m.sh("echo x > \(file)").stderr.contains("Permission denied"), "\(file)")
                }
                #expect(try m.out("ls queues; ls sources/s") == """
                    q
                    q.filter
                    q.size
                    q.status
                    r
                    r.filter
                    r.size
                    r.status
                    id
                    post
                    post.bin
                    type
                    watches

                    """)
            }
        }

        @Test("a long listing comes whole and in creation order across many READDIR chunks, as it was when it began")
        func longListings() throws {
            try withMount { m throws in
                // 3000 sources and 500 queues (2000 entries): far more than one 4 KiB chunk.
                #expect(try m.out("mkdir $(seq -f sources/s%g 3000) && touch $(seq -f queues/q%g 500) && echo ok") == "ok\n")
                #expect(try m.out("ls -U sources | wc -l; ls -U sources | sort | uniq -d | wc -l") == "3000\n0\n")
                #expect(try m.out("ls -U sources | head -n 2; ls -U sources | tail -n 1") == "s1\ns2\ns3000\n")
                #expect(try m.out("ls -U queues | wc -l; ls -U queues | tail -n 4 | tr '\\n' ' '") ==
                    "2000\nq500 q500.size q500.filter q500.status ")
                // Sources made after a listing began are not in it: it is served from the
                // snapshot its first READDIR made (a stream of 4 KiB chunks otherwise
                // rebuilt each time would end with them).
                let script = """
                    import os, sys
                    d = os.open("sources", os.O_RDONLY | os.O_DIRECTORY)
                    it = os.scandir(d)
                    first = next(it).name
                    for n in range(20): os.mkdir("sources/late%d" % n)
                    names = [first] + [e.name for e in it]
                    print(len(names), len(set(names)), sum(n.startswith("late") for n in names))
                    """
                #expect(try m.out("python3 -c '\(script)'") == "3000 3000 0\n")
                #expect(try m.out("ls -U sources | wc -l") == "3020\n")
            }
        }

        @Test("max_queues and max_sources: past the limit, ENOSPC")
        func limits() throws {
            try withMount(["max_queues=2", "max_sources=1"]) { m throws in
                let out = try m.sh("touch queues/a queues/b; touch queues/c; mkdir sources/s; mkdir sources/t; rm queues/a; touch queues/c; ls queues | grep -v '[.]'")
                #expect(out.stdout == "b\nc\n", "\(out)")
                #expect(out.stderr.contains("touch: cannot touch 'queues/c': No space left on device"), "\(out)")
                #expect(out.stderr.contains("mkdir: cannot create directory 'sources/t': No space left on device"), "\(out)")
            }
        }

        @Test("generated text files read the same in small pieces as whole")
        func partialReads() throws {
            try withMount { m throws in
                let out = try m.out("""
                    watch q s 1; echo 'type=256 subtypes=1-3 info=0x100/0xff00' > queues/q.filter
                    for f in README queues/q.status queues/q.filter queues/q.size sources/s/watches sources/s/id; do
                        dd if=$f bs=3 2>/dev/null | cmp - $f && echo same
                    done
                    """)
                #expect(out == String(repeating: "same\n", count: 6))
            }
        }

        @Test("chmod and chown change a queue's and a source's metadata")
        func chmodChown() throws {
            try withMount { m throws in
                #expect(try m.out("""
                    touch queues/q && mkdir sources/s
                    chmod 640 queues/q && chown 65534:65534 queues/q.size && chmod 1700 sources/s
                    stat -c '%n %a %u %g' queues/q queues/q.size sources/s
                    """) == """
                    queues/q 640 0 0
                    queues/q.size 600 65534 65534
                    sources/s 1700 0 0

                    """)
                #expect(try m.out("touch -d '2001-02-03 04:05:06 UTC' queues/q && TZ=UTC stat -c %y queues/q")
                        .hasPrefix("2001-02-03 04:05:06"))
            }
        }
    }
}
