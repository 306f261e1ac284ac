import CKeyObserver
import KeyObserver
import Testing

// The decoder alone, on bytes built here with key_event.h's struct (no root needed):
// the layout it reads is the C header's, and every malformed input is a typed error.

/// An event as the BPF program writes it.
private func event(syscall: UInt16, args: [UInt64], result: Int64 = 0, session: Int32 = 300,
                   type: String = "", description: String = "") -> [UInt8] {
    var e = wq_key_event()
    e.size = UInt32(syscall == 1 ? WQ_KEY_EVENT_SHORT_SIZE : WQ_KEY_EVENT_FULL_SIZE)
    e.syscall = syscall
    e.result = result
    withUnsafeMutableBytes(of: &e.args) { raw in
        for (index, value) in args.prefix(5).enumerated() { raw.storeBytes(of: value, toByteOffset: index * 8, as: UInt64.self) }
    }
    e.pid = 10; e.tgid = 9; e.uid = 1000; e.gid = 1000
    e.thread_keyring = 100; e.process_keyring = 200; e.session_keyring = session
    withUnsafeMutableBytes(of: &e.type) { raw in
        for (index, byte) in type.utf8.prefix(31).enumerated() { raw[index] = byte }
    }
    withUnsafeMutableBytes(of: &e.description) { raw in
        for (index, byte) in description.utf8.prefix(255).enumerated() { raw[index] = byte }
    }
    e.type_length = Int16(min(type.utf8.count, 31) + 1)
    e.description_length = Int16(min(description.utf8.count, 255) + 1)
    return withUnsafeBytes(of: e) { Array($0.prefix(Int(e.size))) }
}

private func decode(_ bytes: [UInt8]) throws(KeyEventDecodeError) -> KeyEvent {
    let result = bytes.withUnsafeBytes { raw in Result { () throws(KeyEventDecodeError) in try KeyEvent(decoding: raw) } }
    return try result.get()
}

@Suite("key event decoder") struct KeyEventDecoderTests {
    private static func minus(_ n: Int32) -> UInt64 { UInt64(UInt32(bitPattern: -n)) }

    @Test("the C struct's sizes and offsets are the decoder's")
    func layout() {
        #expect(MemoryLayout<wq_key_event>.size == KeyEvent.fullSize)
        #expect(MemoryLayout<wq_key_event>.offset(of: \wq_key_event.type) == KeyEvent.shortSize)
        #expect(Int(WQ_KEY_EVENT_SHORT_SIZE) == KeyEvent.shortSize && Int(WQ_KEY_EVENT_FULL_SIZE) == KeyEvent.fullSize)
    }

    @Test("special ids: @t @p @s from the event, @u @us left for user space, @s without a session is @us")
    func specials() throws {
        let link = try decode(event(syscall: 1, args: [8, Self.minus(1), Self.minus(2)]))
        #expect(link.operation == .linked(key: .serial(100), keyring: .serial(200)) && link.keyctlOperation == 8)
        let move = try decode(event(syscall: 1, args: [30, Self.minus(3), Self.minus(4), Self.minus(5), 1]))
        #expect(move.operation == .moved(key: .serial(300), from: .special(-4, uid: 1000), to: .special(-5, uid: 1000), exclusive: true))
        let resolved = move.resolvingUserKeyrings { uid, id in uid == 1000 ? 7000 - id : nil }
        #expect(resolved.operation == .moved(key: .serial(300), from: .serial(7004), to: .serial(7005), exclusive: true))
        let noSession = try decode(event(syscall: 1, args: [7, Self.minus(3)], session: 0))
        #expect(noSession.operation == .cleared(.special(-5, uid: 1000)))
        // The kernel reads serials as 32-bit ints: high bits of the register do not count.
        let high = try decode(event(syscall: 1, args: [2, 0xffff_ffff_0000_0005]))
        #expect(high.operation == .updated(.serial(5)))
    }

    @Test("add_key and request_key: strings, the returned serial, negate's and reject's errors")
    func strings() throws {
        let add = try decode(event(syscall: 2, args: [0, 0, 0, 0, Self.minus(3)], result: 55, type: "user", description: "a:b"))
        #expect(add.operation == .added(key: 55, keyring: .serial(300), type: "user", description: "a:b") && !add.descriptionTruncated)
        let long = String(repeating: "d", count: 400)
        let request = try decode(event(syscall: 3, args: [0, 0, 0, 0], result: 56, type: "user", description: long))
        #expect(request.operation == .requested(key: 56, destination: nil, type: "user", description: String(long.prefix(255))))
        #expect(request.descriptionTruncated)
        #expect(try decode(event(syscall: 1, args: [13, 9, 30, Self.minus(3)])).operation
                == .negated(key: .serial(9), error: 126, timeout: 30, keyring: .serial(300)))
        #expect(try decode(event(syscall: 1, args: [19, 9, 30, 129, 0])).operation
                == .negated(key: .serial(9), error: 129, timeout: 30, keyring: nil))
    }

    @Test("refusals: short, wrong size, unknown syscall or operation, reserved bits, negative result")
    func refusals() {
        let good = event(syscall: 1, args: [2, 5])
        func kind(_ bytes: [UInt8]) -> KeyEventDecodeError.Kind? {
            do { _ = try decode(bytes); return nil } catch { return error.kind }
        }
        #expect(kind(good) == nil)
        for length in [0, 1, 95] { #expect(kind(Array(good.prefix(length))) == .size) }
        #expect(kind(good + [0]) == .size)
        #expect(kind(event(syscall: 2, args: []).prefix(96).map { $0 }) == .size)
        #expect(kind(event(syscall: 4, args: [])) == .field)
        #expect(kind(event(syscall: 1, args: [6, 5])) == .field, "describe is never reported")
        #expect(kind(event(syscall: 1, args: [1 << 32 | 2, 5])) == .field)
        var reserved = good
        reserved[62] = 1
        #expect(kind(reserved) == .field)
        #expect(kind(event(syscall: 1, args: [2, 5], result: -1)) == .result)
    }
}
