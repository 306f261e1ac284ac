import SystemSources
import WatchQueueCore

/// How records are written out.
public enum OutputStyle: Sendable {
    /// One line per record: keyutils' words for key, loss and removal records, the
    /// generic `type=… subtype=…` line for the rest.
    case text
    /// One JSON object per line.
    case json
    /// Each record's bytes unchanged, as read() returned them.
    case raw
}

/// Turns records into output. Pure: the caller supplies the queue label, the time
/// and the mount table that names the mounts of MOUNT records.
///
/// Text lines, optionally prefixed by `TIME ` and then `QUEUE: `:
///
///     123 inst                      key records, as `keyctl watch` prints them
///     456 link 123                  (link and unlk add the other key's serial)
///     -- LOSS --                    an 8-byte loss record
///     305419896 gc                  a removal record (object id, 0 if 8 bytes)
///     mount /tmp/x t tmpfs rw,relatime id=2147484161 parent=2147483676
///     [12345.678901] exit 4242 code=3
///     KERNEL[1514] change /devices/virtual/mem/null (mem) dev=1:3
///     type=4660 subtype=3 id=2 len=12 info=0x0001020c typeinfo=0x0001 data=deadbeef
///
/// MOUNT, PROCESS and DEVICE records (types 2, 64, 65) are described in
/// SystemRecordFormat.swift and README.md; without a table (or when it does not
/// name the mount) a mount line shows `? ? ? ?` for its four names.
///
/// In the generic line `type`, `subtype`, `id` (the watch ID) and `len` are decimal;
/// `info` is the raw `info` word of the header (what a queue filter's
/// `info=FILTER/MASK` is matched against); `typeinfo` is its bits 16–31 (what a
/// source's `post` takes as `info=N`); `data` is the payload after the header in
/// lowercase hex, empty when there is none.
///
/// JSON objects carry, in this order: `time` (with timestamps), `queue` (with several
/// inputs), `kind` (`"key"`, `"loss"`, `"removal"`, `"mount"`, `"process"`,
/// `"device"` or `"other"`), `type`, `subtype`, `id`, `len`, `info`, `typeinfo` (all
/// numbers), then for key records `event` (the keyutils word), `key_id` and `aux`, for
/// removal records `object_id`, for system records `event` and every field of their
/// layout, and last `data` (hex string).
public struct RecordFormatter: Sendable {
    public var style: OutputStyle

    public init(style: OutputStyle) {
        self.style = style
    }

    /// Appends the output for `record` to `output`: a newline-terminated line for text
    /// and JSON, the record's own bytes for raw (which has no room for `queue` or `time`).
    /// `mounts` names the mounts of a MOUNT record; nil when there is no table.
    public func write(_ record: CapturedRecord, queue: String?, time: Timestamp?, mounts: MountTableSnapshot? = nil,
                      to output: inout [UInt8]) {
        switch style {
        case .text:
            output.append(contentsOf: Self.textLine(record, queue: queue, time: time, mounts: mounts).utf8)
            output.append(UInt8(ascii: "\n"))
        case .json:
            output.append(contentsOf: Self.jsonLine(record, queue: queue, time: time, mounts: mounts).utf8)
            output.append(UInt8(ascii: "\n"))
        case .raw:
            output.append(contentsOf: record.bytes)
        }
    }

    /// The text line for `record`, without its newline.
    public static func textLine(_ record: CapturedRecord, queue: String? = nil, time: Timestamp? = nil,
                                mounts: MountTableSnapshot? = nil) -> String {
        var line = ""
        if let time { line += time.iso8601 + " " }
        if let queue { line += queue + ": " }
        switch record.meaning {
        case .loss:
            line += "-- LOSS --"
        case .removal(let objectID):
            // keyutils truncates the id to 32 bits; key serials fit, and wqfs's wider
            // source ids are better shown whole.
            line += "\(objectID) gc"
        case let .key(subtype, keyID, aux):
            line += "\(keyID) \(subtype.keyutilsWord)"
            if subtype.showsAux { line += " \(aux)" }
        case .mount(let mount):
            line += mount.textLine(mounts: mounts)
        case .process(let process):
            line += process.textLine()
        case .device(let device):
            line += device.textLine()
        case .other:
            let header = record.header
            line += "type=\(header.type) subtype=\(header.subtype) id=\(header.watchID)"
                + " len=\(header.length) info=0x\(hex(header.info, digits: 8))"
                + " typeinfo=0x\(hex(UInt32(header.typeInfo), digits: 4)) data=\(hex(record.payload))"
        }
        return line
    }

    /// The JSON object for `record`, on one line, without its newline.
    public static func jsonLine(_ record: CapturedRecord, queue: String? = nil, time: Timestamp? = nil,
                                mounts: MountTableSnapshot? = nil) -> String {
        let header = record.header
        var fields: JSONFields = []
        if let time { fields.append(("time", jsonString(time.iso8601))) }
        if let queue { fields.append(("queue", jsonString(queue))) }
        let meaning = record.meaning
        let kind = switch meaning {
        case .loss: "loss"
        case .removal: "removal"
        case .key: "key"
        case .mount: "mount"
        case .process: "process"
        case .device: "device"
        case .other: "other"
        }
        fields += [
            ("kind", jsonString(kind)),
            ("type", "\(header.type)"),
            ("subtype", "\(header.subtype)"),
            ("id", "\(header.watchID)"),
            ("len", "\(header.length)"),
            ("info", "\(header.info)"),
            ("typeinfo", "\(header.typeInfo)"),
        ]
        switch meaning {
        case let .key(subtype, keyID, aux):
            fields += [("event", jsonString(subtype.keyutilsWord)), ("key_id", "\(keyID)"), ("aux", "\(aux)")]
        case .removal(let objectID):
            fields.append(("object_id", "\(objectID)"))
        case .mount(let mount):
            fields += mount.jsonFields(mounts: mounts)
        case .process(let process):
            fields += process.jsonFields()
        case .device(let device):
            fields += device.jsonFields()
        case .loss, .other:
            break
        }
        fields.append(("data", jsonString(hex(record.payload))))
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }
}

/// Lowercase hex of `value`, zero-padded to `digits`.
private func hex(_ value: UInt32, digits: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// Lowercase hex of every byte, two digits each, no separators.
private func hex(_ bytes: ArraySlice<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0xf)])
    }
    return String(decoding: text, as: UTF8.self)
}

/// `text` as a JSON string literal. Queue labels come from the command line and
/// names from records and the mount table may hold any character, so quotes,
/// backslashes and control characters are escaped.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            out += "\\u" + hex(scalar.value, digits: 4)
        default:
            out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// Labels for the inputs' lines when there are several: each argument's last path
/// component (the queue's name), or the arguments exactly as given if two of those
/// components coincide (`a/q` and `b/q`). `-` (standard input) stays `-`.
public func inputLabels(for arguments: [String]) -> [String] {
    let names = arguments.map { argument -> String in
        let component = argument.split(separator: "/").last.map(String.init)
        return component ?? argument
    }
    return Set(names).count == names.count ? names : arguments
}
