import Testing
@testable import SystemSources

/// /proc/self/mountinfo of this machine, before the changes below.
let capturedMountinfo = """
    22 27 0:21 / /proc rw,relatime - proc proc rw
    23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
    24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334192k,nr_inodes=3083548,mode=755
    25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683584k
    26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
    28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
    29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683584k
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
    33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
    34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
    35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
    37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
    38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
    39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
    40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw

    """

/// The lines the kernel printed after each step, captured here: `mount -t tmpfs x
/// '/tmp/a b'`, a bind of its `sub` at /tmp/cap/bind, a read-only bind remount, a
/// move to /tmp/cap/mv, then make-shared with noexec.
enum CapturedMounts {
    static let spaced = #"45 27 0:40 / /tmp/a\040b rw,relatime - tmpfs x rw"#
    static let bind = "46 27 0:40 /sub /tmp/cap/bind rw,relatime - tmpfs x rw"
    static let bindRO = "46 27 0:40 /sub /tmp/cap/bind ro,relatime - tmpfs x rw"
    static let moved = "46 27 0:40 /sub /tmp/cap/mv ro,relatime - tmpfs x rw"
    static let shared = "46 27 0:40 /sub /tmp/cap/mv rw,noexec,relatime shared:1 - tmpfs x rw"
    // A second run: a parent with a child, the parent moved, the child moved
    // under another parent ('/tmp/a b', id 47).
    static let a = #"47 27 0:42 / /tmp/a\040b rw,relatime - tmpfs x rw"#
    static let p = "48 27 0:43 / /tmp/cap/p rw,relatime - tmpfs pp rw"
    static let c = "49 48 0:44 / /tmp/cap/p/c rw,relatime - tmpfs cc rw"
    static let q = "48 27 0:43 / /tmp/cap/q rw,relatime - tmpfs pp rw"
    static let qc = "49 48 0:44 / /tmp/cap/q/c rw,relatime - tmpfs cc rw"
    static let ac = #"49 47 0:44 / /tmp/a\040b/c rw,relatime - tmpfs cc rw"#
}

@Suite("SystemSources: mountinfo")
struct MountInfoTests {
    func entry(_ line: String) throws -> MountInfoEntry { try MountInfoEntry(parsing: Array(line.utf8)) }
    func table(_ lines: [String]) throws -> MountTable { try MountTable(parsing: capturedMountinfo + lines.joined(separator: "\n")) }
    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func realLinesDecode() throws {
        let root = try entry("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534")
        #expect(root.legacyMountID == 27 && root.legacyParentID == 1 && root.major == 254 && root.minor == 0)
        #expect(text(root.root) == "/" && text(root.mountPoint) == "/" && text(root.fsType) == "ext4")
        #expect(text(root.source) == "/dev/vda" && text(root.superOptions).hasPrefix("rw,discard"))
        #expect(!root.isReadOnly && root.optionalFields.isEmpty && root.uniqueMountID == nil)
        let python = try entry("28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755")
        #expect(python.isReadOnly && text(python.mountOptions) == "ro,nosuid,nodev,relatime")
        let spaced = try entry(CapturedMounts.spaced)
        #expect(text(spaced.mountPoint) == "/tmp/a b" && text(spaced.source) == "x")
        let shared = try entry(CapturedMounts.shared)
        #expect(shared.optionalFields.map(text) == ["shared:1"] && text(shared.root) == "/sub")
        #expect(try MountTable(parsing: capturedMountinfo).count == 20)
    }

    @Test func escapesAndOddFieldsDecode() throws {
        let odd = try entry(#"7 1 8:1 /a\134b /m\011n\012o\040p rw master:3 shared:9 unbindable - fuse.sshfs  rw,user_id=0"#)
        #expect(text(odd.root) == #"/a\b"#)
        #expect(text(odd.mountPoint) == "/m\tn\no p")
        #expect(odd.optionalFields.map(text) == ["master:3", "shared:9", "unbindable"])
        #expect(text(odd.fsType) == "fuse.sshfs" && odd.source.isEmpty)  // empty source: two spaces
        // A mount point named "-" is a field, not the separator.
        let dash = try entry("8 1 0:5 / - rw - tmpfs none rw")
        #expect(text(dash.mountPoint) == "-")
        // A backslash that is no escape stays, and every line reads back the same.
        let lone = try entry(#"9 1 0:5 /\x /\8 rw - tmpfs none rw"#)
        #expect(text(lone.root) == #"/\x"# && text(lone.mountPoint) == #"/\8"#)
        for line in [CapturedMounts.spaced, CapturedMounts.shared, #"7 1 8:1 /a\134b /m\011n rw - fuse.sshfs  rw"#] {
            let decoded = try entry(line)
            #expect(text(decoded.line) == line)
            #expect(try MountInfoEntry(parsing: decoded.line) == decoded)
        }
        #expect(text(lone.line) == #"9 1 0:5 /\134x /\1348 rw - tmpfs none rw"#)
    }

    @Test func malformedLinesAreTypedErrors() {
        let cases = [
            "", "22 27 0:21 / /proc rw,relatime proc proc rw",  // no separator
            "22 27 0:21 / /proc rw,relatime - proc proc",        // two fields after it
            "x 27 0:21 / /proc rw - proc proc rw", "22 -1 0:21 / /proc rw - proc proc rw",
            "22 27 021 / /proc rw - proc proc rw", "22 27 0:21:3 / /proc rw - proc proc rw",
            "22 27 0:99999999999 / /proc rw - proc proc rw", "22 27 0:21 / /proc relatime - proc proc rw",
            "99999999999999999999 27 0:21 / /proc rw - proc proc rw",
        ]
        for line in cases {
            let error = decodeError { try MountInfoEntry(parsing: Array(line.utf8), lineNumber: 4) }
            #expect(error?.format == .mountinfo && error?.position == 4 && error?.reason.isEmpty == false, "\(line)")
        }
        let twice = decodeError { try MountTable(parsing: "1 1 0:1 / / rw - a b rw\n1 1 0:1 / /x rw - a b rw\n") }
        #expect(twice?.position == 2)
    }

    func changes(_ before: [String], _ after: [String]) throws -> [MountChange] {
        try table(before).changes(to: table(after))
    }

    func summary(_ changes: [MountChange]) -> [String] {
        changes.map { change in
            let n = change.notification
            return "\(change.subtype) on \(n.triggeredOn) aux \(n.auxiliaryMount) flags \(String(n.flags.rawValue, radix: 16))"
        }
    }

    @Test func mountBindRemountMoveUnmountGiveTheirSubtypes() throws {
        #expect(try changes([], []).isEmpty)
        #expect(summary(try changes([], [CapturedMounts.spaced])) == ["newMount on 27 aux 45 flags 0"])
        #expect(summary(try changes([CapturedMounts.spaced], [CapturedMounts.spaced, CapturedMounts.bind]))
            == ["newMount on 27 aux 46 flags 0"])
        #expect(summary(try changes([CapturedMounts.bind], [CapturedMounts.bindRO])) == ["readOnly on 46 aux 0 flags 20000"])
        #expect(summary(try changes([CapturedMounts.bindRO], [CapturedMounts.bind])) == ["readOnly on 46 aux 0 flags 0"])
        #expect(summary(try changes([CapturedMounts.bindRO], [CapturedMounts.moved]))
            == ["moveFrom on 27 aux 46 flags 0", "moveTo on 27 aux 46 flags 0"])
        #expect(summary(try changes([CapturedMounts.moved], [CapturedMounts.shared]))
            == ["readOnly on 46 aux 0 flags 0", "setattr on 46 aux 0 flags 0"])
        #expect(summary(try changes([CapturedMounts.spaced, CapturedMounts.shared], [CapturedMounts.spaced]))
            == ["unmount on 27 aux 46 flags 0"])
        #expect(summary(try changes([CapturedMounts.spaced], [])) == ["unmount on 27 aux 45 flags 0"])
        let change = try changes([CapturedMounts.spaced], [])[0]
        #expect(text(change.entry.mountPoint) == "/tmp/a b")
    }

    @Test func aParentsMoveIsNotItsChildrensAndAMoveBetweenParentsNamesBoth() throws {
        let start = [CapturedMounts.a, CapturedMounts.p, CapturedMounts.c]
        #expect(summary(try changes([], start))
            == ["newMount on 27 aux 47 flags 0", "newMount on 27 aux 48 flags 0", "newMount on 48 aux 49 flags 0"])
        let parentMoved = [CapturedMounts.a, CapturedMounts.q, CapturedMounts.qc]
        #expect(summary(try changes(start, parentMoved)) == ["moveFrom on 27 aux 48 flags 0", "moveTo on 27 aux 48 flags 0"])
        let childMoved = [CapturedMounts.a, CapturedMounts.q, CapturedMounts.ac]
        #expect(summary(try changes(parentMoved, childMoved)) == ["moveFrom on 48 aux 49 flags 0", "moveTo on 47 aux 49 flags 0"])
        // Unmounting all three: children before parents.
        #expect(summary(try changes(childMoved, []))
            == ["unmount on 47 aux 49 flags 0", "unmount on 27 aux 48 flags 0", "unmount on 27 aux 47 flags 0"])
    }

    @Test func aReusedIdIsAnUnmountAndANewMount() throws {
        let other = #"45 27 0:41 / /tmp/other rw,relatime - tmpfs y rw"#
        #expect(summary(try changes([CapturedMounts.spaced], [other]))
            == ["unmount on 27 aux 45 flags 0", "newMount on 27 aux 45 flags 0"])
    }

    @Test func superOptionChangesAreSetattrButTheirLeadingRoIsNot() throws {
        let small = "45 27 0:40 / /t rw,relatime - tmpfs x rw,size=4k"
        let big = "45 27 0:40 / /t rw,relatime - tmpfs x rw,size=8k"
        let ro = "45 27 0:40 / /t ro,relatime - tmpfs x ro,size=4k"
        #expect(summary(try changes([small], [big])) == ["setattr on 45 aux 0 flags 0"])
        #expect(summary(try changes([small], [ro])) == ["readOnly on 45 aux 0 flags 20000"])
    }

    @Test func uniqueIdsGoIntoRecordsWhenKnown() throws {
        // The mechanism fills unique ids from statmount; here by hand.
        let captured = try table([CapturedMounts.spaced])
        var root = try #require(captured[27]), spaced = try #require(captured[45])
        root.uniqueMountID = 0x8000_0001
        spaced.uniqueMountID = 0x8000_0140
        var before = MountTable(), after = MountTable()
        try before.insert(root)
        try after.insert(root)
        try after.insert(spaced)
        let change = try #require(before.changes(to: after).first)
        #expect(change.notification == MountNotification(.newMount, triggeredOn: 0x8000_0001, auxiliaryMount: 0x8000_0140))
        #expect(change.triggeredOn == MountChange.Reference(legacyID: 27, uniqueID: 0x8000_0001))
    }
}
