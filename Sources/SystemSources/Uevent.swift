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

    /// Decodes one datagram.
    public init(decoding datagram: UnsafeRawBufferPointer) throws(DecodeError) {
        let bytes = datagram
        func error(_ offset: Int, _ reason: String) -> DecodeError { DecodeError(.uevent, at: offset, reason) }

        let magic = Array("libudev".utf8)
        if bytes.count >= magic.count && bytes.prefix(magic.count).elementsEqual(magic) {
            throw error(0, "a udev message (libudev header), not the kernel's")
        }
        guard let last = bytes.last else { throw error(0, "empty message") }
        guard last == 0 else { throw error(bytes.count - 1, "the last string is not NUL-terminated") }

        // The strings between NULs, each with its offset; none may be empty.
        var strings: [(offset: Int, bytes: UnsafeRawBufferPointer)] = []
        var start = 0
        for index in bytes.indices where bytes[index] == 0 {
            guard index > start else { throw error(start, "an empty string") }
            strings.append((start, UnsafeRawBufferPointer(rebasing: bytes[start..<index])))
            start = index + 1
        }

        // The summary line, ACTION@DEVPATH.
        guard let (summaryOffset, summary) = strings.first else { throw error(0, "no strings") }
        guard let at = summary.firstIndex(of: UInt8(ascii: "@")) else {
            throw error(summaryOffset, "the first string has no '@' (ACTION@DEVPATH expected)")
        }
        let summaryAction = summary[..<at], summaryPath = summary[(at + 1)...]

        var action: DeviceAction?, devpath: [UInt8]?, subsystem: [UInt8]?, seqnum: UInt64?
        var major: UInt32?, minor: UInt32?, devname: [UInt8]?, devtype: [UInt8]?
        var properties: [Property] = []
        properties.reserveCapacity(strings.count - 1)
        for (offset, string) in strings.dropFirst() {
            guard let equals = string.firstIndex(of: UInt8(ascii: "=")), equals > 0 else {
                throw error(offset, "\(Self.quoted(string)) is not KEY=VALUE")
            }
            let key = Array(string[..<equals]), value = Array(string[(equals + 1)...])
            properties.append(Property(key: key, value: value))
            // A key the record uses may appear once: two would make it ambiguous.
            func once<T>(_ slot: inout T?, _ parsed: T?) throws(DecodeError) {
                guard slot == nil else { throw error(offset, "a second \(Self.quoted(key))") }
                guard let parsed else { throw error(offset, "bad value in \(Self.quoted(string))") }
                slot = parsed
            }
            switch String(decoding: key, as: UTF8.self) {
            case "ACTION":
                guard let named = DeviceAction(word: value) else {
                    throw error(offset, "unknown action \(Self.quoted(value))")
                }
                try once(&action, named)
            case "DEVPATH": try once(&devpath, value)
            case "SUBSYSTEM": try once(&subsystem, value)
            case "SEQNUM": try once(&seqnum, Self.decimal(value, max: UInt64.max))
            case "MAJOR": try once(&major, Self.decimal(value, max: UInt64(UInt32.max)).map { UInt32($0) })
            case "MINOR": try once(&minor, Self.decimal(value, max: UInt64(UInt32.max)).map { UInt32($0) })
            case "DEVNAME": try once(&devname, value)
            case "DEVTYPE": try once(&devtype, value)
            default: break
            }
        }

        guard let action else { throw error(0, "no ACTION") }
        guard let devpath else { throw error(0, "no DEVPATH") }
        guard let subsystem else { throw error(0, "no SUBSYSTEM") }
        guard let seqnum else { throw error(0, "no SEQNUM") }
        guard summaryAction.elementsEqual(action.word.utf8), summaryPath.elementsEqual(devpath) else {
            throw error(summaryOffset, "\(Self.quoted(summary)) disagrees with ACTION and DEVPATH")
        }
        self.action = action
        self.devpath = devpath
        self.subsystem = subsystem
        self.seqnum = seqnum
        self.major = major
        self.minor = minor
        self.devname = devname
        self.devtype = devtype
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
