import Testing
@testable import SystemSources
import CSystemRecordsABI

/// What read() returned on this machine (Linux 6.18) from a FAN_REPORT_MNT group
/// marked on the mount namespace, for `mount -t tmpfs`, `mount --move` and `umount`.
enum CapturedFanotify {
    static let attach = hex("""
        28 00 00 00 03 00 18 00 00 00 00 01 00 00 00 00 ff ff ff ff f2 6a 00 00
        07 00 10 00 00 00 00 00 40 01 00 80 00 00 00 00
        """)
    static let move = hex("""
        28 00 00 00 03 00 18 00 00 00 00 03 00 00 00 00 ff ff ff ff f4 6a 00 00
        07 00 10 00 00 00 00 00 40 01 00 80 00 00 00 00
        """)
    static let detach = hex("""
        28 00 00 00 03 00 18 00 00 00 00 02 00 00 00 00 ff ff ff ff f6 6a 00 00
        07 00 10 00 00 00 00 00 40 01 00 80 00 00 00 00
        """)
}

@Suite("SystemSources: fanotify mount events")
struct FanotifyTests {
    func decode(_ bytes: [UInt8]) throws(DecodeError) -> [Fanotify.Event] {
        try bytes.withUnsafeBufferPointer { (raw) throws(DecodeError) -> [Fanotify.Event] in
            try Fanotify.decode(UnsafeRawBufferPointer(raw))
        }
    }

    @Test func capturedEventsDecode() throws {
        #expect(try decode(CapturedFanotify.attach) == [Fanotify.Event(kind: .attach, mountID: 0x8000_0140, pid: 0x6af2, mask: 0x0100_0000)])
        #expect(try decode(CapturedFanotify.move) == [Fanotify.Event(kind: .move, mountID: 0x8000_0140, pid: 0x6af4, mask: 0x0300_0000)])
        #expect(try decode(CapturedFanotify.detach) == [Fanotify.Event(kind: .detach, mountID: 0x8000_0140, pid: 0x6af6, mask: 0x0200_0000)])
        // Several events in one read, in order.
        let all = try decode(CapturedFanotify.attach + CapturedFanotify.move + CapturedFanotify.detach)
        #expect(all.map(\.kind) == [.attach, .move, .detach])
        #expect(try decode([]) == [])
    }

    @Test func eventsBuiltWithTheKernelStructsDecode() throws {
        let attach = cBytes { wqfs_abi_fanotify_mount($0, Fanotify.mountAttach, 1234, 0x1_0000_0001) }
        #expect(try decode(attach) == [Fanotify.Event(kind: .attach, mountID: 0x1_0000_0001, pid: 1234, mask: Fanotify.mountAttach)])
        #expect(attach.count == CapturedFanotify.attach.count && attach[0..<8] == CapturedFanotify.attach[0..<8])
        let overflow = cBytes { wqfs_abi_fanotify_overflow($0) }
        #expect(try decode(overflow + attach).map(\.kind) == [.overflow, .attach])
        #expect(UInt32(Fanotify.metadataVersion) == cConstant("FANOTIFY_METADATA_VERSION"))
        #expect(UInt32(Fanotify.queueOverflow) == cConstant("FAN_Q_OVERFLOW"))
    }

    @Test func unknownInfoRecordsAreSkipped() throws {
        // An extra 8-byte info record of type 99 before the mount one.
        var event = CapturedFanotify.attach
        event.insert(contentsOf: [99, 0, 8, 0, 1, 2, 3, 4], at: 24)
        event = patch(event, at: 0, UInt32(event.count))
        #expect(try decode(event).first?.mountID == 0x8000_0140)
    }

    @Test func malformedEventsAreTypedErrors() {
        let good = CapturedFanotify.attach
        let cases: [(String, [UInt8])] = [
            ("event_len under metadata_len", patch(good, at: 0, UInt32(20))),
            ("event_len 0", patch(good, at: 0, UInt32(0))),
            ("event_len past the buffer", patch(good, at: 0, UInt32(41))),
            ("wrong version", patch(good, at: 4, UInt8(2))),
            ("metadata_len under 24", patch(good, at: 6, UInt16(16))),
            ("info len under 4", patch(good, at: 26, UInt16(3))),
            ("info len past the event", patch(good, at: 26, UInt16(20))),
            ("mount info too short", patch(patch(good, at: 26, UInt16(8)), at: 0, UInt32(32)).prefix(32).map { $0 }),
            ("no mount info", patch(good, at: 0, UInt32(24)).prefix(24).map { $0 }),
            ("no mount bit", patch(good, at: 8, UInt64(0x20))),
            ("two mount infos", patch(good + Array(good[24...]), at: 0, UInt32(56))),
            ("partial header after an event", good + [1, 2, 3]),
        ]
        for (name, bytes) in cases {
            let error = decodeError { try decode(bytes) }
            #expect(error?.format == .fanotify, "\(name)")
            #expect(error?.reason.isEmpty == false, "\(name)")
        }
        for length in 1..<good.count {
            #expect(decodeError { try decode(Array(good.prefix(length))) } != nil, "cut at \(length)")
        }
    }

    @Test func eventsBeforeAMalformedOneAreDelivered() {
        var seen: [Fanotify.Event] = []
        let bytes = CapturedFanotify.attach + [0, 0, 0, 0]
        let error = bytes.withUnsafeBytes { raw in decodeError { try Fanotify.forEachEvent(raw) { seen.append($0) } } }
        #expect(error != nil)
        #expect(seen.count == 1)
    }
}
