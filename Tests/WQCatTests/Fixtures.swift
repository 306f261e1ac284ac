import WQCatKit
import WatchQueueCore

/// Byte streams and their expected output, shared by the library and executable tests.
enum Fixtures {
    /// KERNEL-FACTS' removal example, literally: key 0x12345678, watch ID 1.
    static let kernelRemoval: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00,
                                         0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x00]
    /// KERNEL-FACTS' loss record, literally.
    static let kernelLoss: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00]

    /// A record of any type, built from its parts.
    static func record(type: UInt32, subtype: UInt8, watchID: UInt8 = 0, typeInfo: UInt16 = 0,
                       payload: [UInt8] = []) -> [UInt8] {
        RecordHeader(type: type, subtype: subtype, length: 8 + payload.count,
                     watchID: watchID, typeInfo: typeInfo).bytes + payload
    }

    /// Every kind of record wqcat distinguishes, with the line it must print.
    static let golden: [(bytes: [UInt8], text: String)] = [
        (kernelRemoval, "305419896 gc"),
        (kernelLoss, "-- LOSS --"),
        // inst on a negative key carries minus the errno in aux; keyutils does not print it.
        (Records.key(.instantiated, keyID: 1001, aux: UInt32(bitPattern: -126), watchID: 1), "1001 inst"),
        (Records.key(.updated, keyID: 1002, aux: 0, watchID: 1), "1002 upd"),
        (Records.key(.linked, keyID: 1003, aux: 2001, watchID: 1), "1003 link 2001"),
        (Records.key(.unlinked, keyID: 1004, aux: 2002, watchID: 1), "1004 unlk 2002"),
        (Records.key(.cleared, keyID: 1005, aux: 0, watchID: 1), "1005 clr"),
        (Records.key(.revoked, keyID: 1006, aux: 0, watchID: 1), "1006 rev"),
        (Records.key(.invalidated, keyID: 1007, aux: 0, watchID: 1), "1007 inv"),
        (Records.key(.setattr, keyID: 4_294_967_295, aux: 0, watchID: 1), "4294967295 attr"),
        // The kernel's 8-byte removal record, made when the object id is 0.
        (Records.removal(watchID: 2, objectID: 0), "0 gc"),
        // wqfs source ids are u64: shown whole, not cut to 32 bits as keyutils would.
        (Records.removal(watchID: 3, objectID: 0x1_0000_0001), "4294967297 gc"),
        // Key records of the wrong length or an unknown subtype: keyutils prints nothing.
        (record(type: 1, subtype: 0, watchID: 1, payload: [1, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]),
         "type=1 subtype=0 id=1 len=20 info=0x00000114 typeinfo=0x0000 data=0100000000000000aabbccdd"),
        (record(type: 1, subtype: 8, payload: [7, 0, 0, 0, 0, 0, 0, 0]),
         "type=1 subtype=8 id=0 len=16 info=0x00000010 typeinfo=0x0000 data=0700000000000000"),
        (record(type: 1, subtype: 2, payload: [7, 0, 0, 0]),
         "type=1 subtype=2 id=0 len=12 info=0x0000000c typeinfo=0x0000 data=07000000"),
        // META subtypes other than removal and loss, and a loss record with a payload.
        (record(type: 0, subtype: 2, watchID: 9), "type=0 subtype=2 id=9 len=8 info=0x00000908 typeinfo=0x0000 data="),
        (record(type: 0, subtype: 1, payload: [0xff]), "type=0 subtype=1 id=0 len=9 info=0x00000009 typeinfo=0x0000 data=ff"),
        // A removal record of neither 8 nor 16 bytes.
        (record(type: 0, subtype: 0, watchID: 1, payload: [1, 2, 3, 4]),
         "type=0 subtype=0 id=1 len=12 info=0x0000010c typeinfo=0x0000 data=01020304"),
        // Other types: the generic line with every header field.
        (record(type: 0x1234, subtype: 3, watchID: 2, typeInfo: 1, payload: [0xde, 0xad, 0xbe, 0xef]),
         "type=4660 subtype=3 id=2 len=12 info=0x0001020c typeinfo=0x0001 data=deadbeef"),
        (record(type: 0xff_ffff, subtype: 255, watchID: 255, typeInfo: 0xffff),
         "type=16777215 subtype=255 id=255 len=8 info=0xffffff08 typeinfo=0xffff data="),
        (record(type: 7, subtype: 0, payload: [UInt8](repeating: 0x5a, count: 119)),
         "type=7 subtype=0 id=0 len=127 info=0x0000007f typeinfo=0x0000 data="
            + String(repeating: "5a", count: 119)),
    ]

    /// All golden records packed back to back, as one read() would return them.
    static var goldenStream: [UInt8] { golden.flatMap(\.bytes) }

    /// The text output for `goldenStream`.
    static var goldenText: String { golden.map { $0.text + "\n" }.joined() }
}
