import WatchQueueCore

/// A kernel uevent, decoded from one `NETLINK_KOBJECT_UEVENT` datagram (group 1):
/// `ACTION@DEVPATH\0` then `KEY=VALUE\0` strings, the last one NUL-terminated too.
/// The kernel always sends ACTION, DEVPATH, SUBSYSTEM and SEQNUM; MAJOR, MINOR,
/// DEVNAME and DEVTYPE only for some devices.
///
/// Only messages from the kernel itself may be trusted: any process can send to the
/// group. Checking the sender's `nl_pid` is 0 is the mechanism's job, as it alone
/// sees the address; this decoder sees the bytes. It refuses udev's own multicast
/// format (a `libudev` magic header), which arrives on group 2 and is not the
/// kernel's.
public struct Uevent: Equatable, Hashable, Sendable {
    /// One `KEY=VALUE` string, split at its first `=`.
    public struct Property: Equatable, Hashable, Sendable {
        public var key: [UInt8]
        public var value: [UInt8]

        public init(key: [UInt8], value: [UInt8]) {
            self.key = key
            self.value = value
        }

        public init(_ key: String, _ value: String) { self.init(key: Array(key.utf8), value: Array(value.utf8)) }
    }

    public var action: DeviceAction
    public var devpath: [UInt8]
    public var subsystem: [UInt8]
    public var seqnum: UInt64
    public var major: UInt32?
    public var minor: UInt32?
    public var devname: [UInt8]?
    public var devtype: [UInt8]?
    /// Every property, in the order sent (the picked-out ones included).
    public var properties: [Property]

    /// The DEVICE record this event becomes.
    public var notification: DeviceNotification {
        DeviceNotification(action: action, seqnum: seqnum,
                           major: major ?? DeviceNotification.noNumber, minor: minor ?? DeviceNotification.noNumber,
                           subsystem: subsystem, devpath: devpath)
    }

    /// What the DEVICE record needs of a datagram, found by ``scan(_:property:)``
    /// without copying a byte: the ranges index the datagram scanned.
    struct Fields {
        var action: DeviceAction
        var seqnum: UInt64
        var major: UInt32?
        var minor: UInt32?
        var devpath: Range<Int>
        var subsystem: Range<Int>
        var devname: Range<Int>?
        var devtype: Range<Int>?

        /// Writes the DEVICE record of `datagram` (the one scanned) and returns its length.
        func encode(from datagram: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer) -> Int {
            DeviceNotification.encode(action: action, seqnum: seqnum, major: major ?? DeviceNotification.noNumber,
                                      minor: minor ?? DeviceNotification.noNumber, subsystem: datagram[subsystem],
                                      devpath: datagram[devpath], into: buffer)
        }
    }

    /// Checks one datagram and finds the record's fields in it, allocating nothing
    /// unless it is refused: the event thread posts from this before anything is
    /// copied. `property` sees each `KEY=VALUE` string's key and value ranges, in order.
    static func scan(_ bytes: UnsafeRawBufferPointer,
                     property: (_ key: Range<Int>, _ value: Range<Int>) -> Void = { _, _ in }) throws(DecodeError) -> Fields {
        func error(_ offset: Int, _ reason: String) -> DecodeError { DecodeError(.uevent, at: offset, reason) }

        if bytes.count >= 7 && bytes[..<7].elementsEqual("libudev".utf8) {
            throw error(0, "a udev message (libudev header), not the kernel's")
        }
        guard let last = bytes.last else { throw error(0, "empty message") }
        guard last == 0 else { throw error(bytes.count - 1, "the last string is not NUL-terminated") }

        // The strings between NULs, one at a time; none may be empty. The first is
        // the summary line, ACTION@DEVPATH.
        var start = 0
        func nextString() throws(DecodeError) -> Range<Int>? {
            guard start < bytes.count else { return nil }
            var end = start
            while bytes[end] != 0 { end += 1 }  // the last byte is a NUL
            guard end > start else { throw error(start, "an empty string") }
            defer { start = end + 1 }
            return start..<end
        }
        guard let summary = try nextString() else { throw error(0, "no strings") }
        guard let at = bytes[summary].firstIndex(of: UInt8(ascii: "@")) else {
            throw error(summary.lowerBound, "the first string has no '@' (ACTION@DEVPATH expected)")
        }

        var action: DeviceAction?, devpath: Range<Int>?, subsystem: Range<Int>?, seqnum: UInt64?
        var major: UInt32?, minor: UInt32?, devname: Range<Int>?, devtype: Range<Int>?
        while let string = try nextString() {
            guard let equals = bytes[string].firstIndex(of: UInt8(ascii: "=")), equals > string.lowerBound else {
                throw error(string.lowerBound, "\(quoted(bytes[string])) is not KEY=VALUE")
            }
            let key = string.lowerBound..<equals, value = (equals + 1)..<string.upperBound
            property(key, value)
            // A key the record uses may appear once: two would make it ambiguous.
            func once<T>(_ slot: inout T?, _ parsed: T?) throws(DecodeError) {
                guard slot == nil else { throw error(string.lowerBound, "a second \(quoted(bytes[key]))") }
                guard let parsed else { throw error(string.lowerBound, "bad value in \(quoted(bytes[string]))") }
                slot = parsed
            }
            func number(max: UInt64) -> UInt64? { decimal(bytes[value], max: max) }
            switch Key(bytes[key]) {
            case .action?:
                guard let named = DeviceAction(word: bytes[value]) else {
                    throw error(string.lowerBound, "unknown action \(quoted(bytes[value]))")
                }
                try once(&action, named)
            case .devpath?: try once(&devpath, value)
            case .subsystem?: try once(&subsystem, value)
            case .seqnum?: try once(&seqnum, number(max: UInt64.max))
            case .major?: try once(&major, number(max: UInt64(UInt32.max)).map { UInt32($0) })
            case .minor?: try once(&minor, number(max: UInt64(UInt32.max)).map { UInt32($0) })
            case .devname?: try once(&devname, value)
            case .devtype?: try once(&devtype, value)
            case nil: break
            }
        }

        guard let action else { throw error(0, "no ACTION") }
        guard let devpath else { throw error(0, "no DEVPATH") }
        guard let subsystem else { throw error(0, "no SUBSYSTEM") }
        guard let seqnum else { throw error(0, "no SEQNUM") }
        guard bytes[summary.lowerBound..<at].elementsEqual(action.word.utf8),
              bytes[(at + 1)..<summary.upperBound].elementsEqual(bytes[devpath]) else {
            throw error(summary.lowerBound, "\(quoted(bytes[summary])) disagrees with ACTION and DEVPATH")
        }
        return Fields(action: action, seqnum: seqnum, major: major, minor: minor, devpath: devpath,
                      subsystem: subsystem, devname: devname, devtype: devtype)
    }

    /// The keys the record takes a field from.
    private enum Key {
        case action, devpath, subsystem, seqnum, major, minor, devname, devtype

        init?(_ key: UnsafeRawBufferPointer.SubSequence) {
            // Lengths first: a uevent has about ten keys, each tried against eight names.
            func `is`(_ name: StaticString) -> Bool {
                key.count == name.utf8CodeUnitCount
                    && key.elementsEqual(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            }
            if `is`("ACTION") { self = .action }
            else if `is`("DEVPATH") { self = .devpath }
            else if `is`("SUBSYSTEM") { self = .subsystem }
            else if `is`("SEQNUM") { self = .seqnum }
            else if `is`("MAJOR") { self = .major }
            else if `is`("MINOR") { self = .minor }
            else if `is`("DEVNAME") { self = .devname }
            else if `is`("DEVTYPE") { self = .devtype }
            else { return nil }
        }
    }

    /// Decodes one datagram.
    public init(decoding datagram: UnsafeRawBufferPointer) throws(DecodeError) {
        var properties: [Property] = []
        let fields = try Self.scan(datagram) { key, value in
            properties.append(Property(key: Array(datagram[key]), value: Array(datagram[value])))
        }
        func copy(_ range: Range<Int>) -> [UInt8] { Array(datagram[range]) }
        action = fields.action
        devpath = copy(fields.devpath)
        subsystem = copy(fields.subsystem)
        seqnum = fields.seqnum
        major = fields.major
        minor = fields.minor
        devname = fields.devname.map(copy)
        devtype = fields.devtype.map(copy)
        self.properties = properties
    }

    /// Decodes one datagram held in an array.
    public init(decoding datagram: [UInt8]) throws(DecodeError) {
        self = try datagram.withUnsafeBufferPointer { (bytes) throws(DecodeError) -> Uevent in
            try Uevent(decoding: UnsafeRawBufferPointer(bytes))
        }
    }

    /// The datagram the kernel would send for this event: the summary, then the
    /// properties in order.
    public var datagram: [UInt8] {
        var bytes = Array(action.word.utf8) + [UInt8(ascii: "@")] + devpath + [0]
        for property in properties { bytes += property.key + [UInt8(ascii: "=")] + property.value + [0] }
        return bytes
    }

    /// A decimal number of 1–20 digits, at most `max`; nil otherwise.
    static func decimal<C: Collection>(_ digits: C, max: UInt64) -> UInt64? where C.Element == UInt8 {
        guard !digits.isEmpty else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(digit - UInt8(ascii: "0")))
            guard !overflow, !carry, sum <= max else { return nil }
            value = sum
        }
        return value
    }

    static func quoted<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        Grammar.quoted(String(decoding: Array(bytes), as: UTF8.self))
    }
}
