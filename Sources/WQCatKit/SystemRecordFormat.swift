import SystemSources

// The text and JSON forms of the system sources' records, in the style of the tools
// their users know: `findmnt --poll` for mounts, forkstat for processes, `udevadm
// monitor` for devices. RecordFormatter calls these; they are pure, like it.

/// A JSON object's fields in order, each value already JSON text.
typealias JSONFields = [(String, String)]

// MARK: MOUNT

extension MountSubtype {
    /// The action word of the text line and of JSON's `event`, as findmnt --poll names
    /// them where it has a name (`mount`, `umount`, `remount`, `move`).
    public var word: String {
        switch self {
        case .newMount: "mount"
        case .unmount: "umount"
        case .expiry: "expire"
        case .readOnly, .setattr: "remount"
        case .moveFrom: "move-from"
        case .moveTo: "move-to"
        }
    }

    /// Whether `auxiliaryMount` is the mount the record is about (and `triggeredOn` its
    /// parent), rather than `triggeredOn` itself.
    var namesAuxiliaryMount: Bool { self != .readOnly && self != .setattr }
}

extension MountNotification {
    /// The mount the record is about: the one added, removed or moved, or the one
    /// whose attributes changed. What the mount table is looked up by.
    public var subjectMount: UInt64 { subtype.namesAuxiliaryMount ? auxiliaryMount : triggeredOn }

    /// The subject's parent (old or new, for moves), when the record names one.
    public var parentMount: UInt64? { subtype.namesAuxiliaryMount ? triggeredOn : nil }

    /// `mount TARGET SOURCE FSTYPE OPTIONS id=N parent=M`, and the like.
    func textLine(mounts: MountTableSnapshot?) -> String {
        var line = subtype.word + " "
        if let entry = mounts?[subjectMount] {
            line += [entry.mountPoint, entry.source, entry.fsType, entry.options].map(textField).joined(separator: " ")
        } else {
            line += "? ? ? ?"
        }
        switch subtype {
        case .readOnly: line += flags.contains(.isNowReadOnly) ? " ro" : " rw"
        case .setattr: line += " (attributes)"
        default: break
        }
        line += " id=\(subjectMount)"
        if let parentMount { line += " parent=\(parentMount)" }
        if flags.contains(.inSubtree) { line += " in-subtree" }
        if flags.contains(.submount) { line += " submount" }
        return line
    }

    func jsonFields(mounts: MountTableSnapshot?) -> JSONFields {
        var fields: JSONFields = [
            ("event", jsonString(subtype.word)),
            ("triggered_on", "\(triggeredOn)"),
            ("auxiliary_mount", "\(auxiliaryMount)"),
            ("in_subtree", "\(flags.contains(.inSubtree))"),
            ("now_read_only", "\(flags.contains(.isNowReadOnly))"),
            ("submount", "\(flags.contains(.submount))"),
        ]
        if let entry = mounts?[subjectMount] {
            fields += [
                ("mount_point", jsonString(entry.mountPoint)),
                ("fs_type", jsonString(entry.fsType)),
                ("source", jsonString(entry.source)),
                ("options", jsonString(entry.options)),
            ]
        }
        return fields
    }
}

// MARK: PROCESS

extension ProcessSubtype {
    /// The event word of the text line and of JSON's `event`.
    public var word: String {
        switch self {
        case .fork: "fork"
        case .exec: "exec"
        case .uid: "uid"
        case .gid: "gid"
        case .sid: "sid"
        case .ptrace: "ptrace"
        case .comm: "comm"
        case .coredump: "coredump"
        case .exit: "exit"
        }
    }
}

extension ProcessNotification {
    /// `[SECONDS.MICROSECONDS] EVENT PID DETAILS[ tgid=T]`. Parents and tracers are
    /// shown by process id (their tgid), as `ps` shows a PPID; the thread ids are in JSON.
    func textLine() -> String {
        let seconds = timestampNS / 1_000_000_000, micros = timestampNS % 1_000_000_000 / 1000
        // Like dmesg's stamp, but unpadded, so it stays one field for awk and cut.
        var line = "[\(seconds).\(pad(Int64(micros), 6))] \(event.subtype.word) \(pid)"
        switch event {
        case .exec, .sid:
            break
        case .fork(_, let parentTGID), .coredump(_, let parentTGID):
            line += " parent=\(parentTGID)"
        case let .uid(real, effective):
            line += " ruid=\(real) euid=\(effective)"
        case let .gid(real, effective):
            line += " rgid=\(real) egid=\(effective)"
        case let .ptrace(tracerPID, tracerTGID):
            line += tracerPID == 0 && tracerTGID == 0 ? " detach" : " tracer=\(tracerTGID)"
        case .comm(let comm):
            line += " comm=" + textField(comm.bytes)
        case .exit(let exit):
            line += exit.killedBySignal ? " signal=\(exit.exitSignal)" + (exit.dumpedCore ? " core" : "")
                : " code=\(exit.exitCode)"
        }
        if tgid != pid { line += " tgid=\(tgid)" }
        return line
    }

    func jsonFields() -> JSONFields {
        var fields: JSONFields = [
            ("event", jsonString(event.subtype.word)),
            ("timestamp_ns", "\(timestampNS)"),
            ("pid", "\(pid)"),
            ("tgid", "\(tgid)"),
        ]
        switch event {
        case .exec, .sid:
            break
        case let .fork(parentPID, parentTGID), let .coredump(parentPID, parentTGID):
            fields += [("parent_pid", "\(parentPID)"), ("parent_tgid", "\(parentTGID)")]
        case let .uid(real, effective):
            fields += [("ruid", "\(real)"), ("euid", "\(effective)")]
        case let .gid(real, effective):
            fields += [("rgid", "\(real)"), ("egid", "\(effective)")]
        case let .ptrace(tracerPID, tracerTGID):
            fields += [("tracer_pid", "\(tracerPID)"), ("tracer_tgid", "\(tracerTGID)")]
        case .comm(let comm):
            fields.append(("comm", jsonString(comm.bytes)))
        case .exit(let exit):
            fields += [
                ("exit_code", "\(exit.exitCode)"),
                ("exit_signal", "\(exit.exitSignal)"),
                ("killed_by_signal", "\(exit.killedBySignal)"),
                ("dumped_core", "\(exit.dumpedCore)"),
                ("parent_pid", "\(exit.parentPID)"),
                ("parent_tgid", "\(exit.parentTGID)"),
            ]
        }
        return fields
    }
}

// MARK: DEVICE

extension DeviceNotification {
    /// `KERNEL[SEQNUM] ACTION DEVPATH (SUBSYSTEM)[ dev=MAJOR:MINOR][ truncated]`: udevadm
    /// monitor's kernel line, with the sequence number where it shows a timestamp (the
    /// record has none; the number orders events and matches the devices side file).
    func textLine() -> String {
        var line = "KERNEL[\(seqnum)] \(action.word) \(textField(devpath)) (\(textField(subsystem)))"
        if major != Self.noNumber && minor != Self.noNumber { line += " dev=\(major):\(minor)" }
        if flags.contains(.devpathTruncated) { line += " truncated" }
        return line
    }

    func jsonFields() -> JSONFields {
        var fields: JSONFields = [("event", jsonString(action.word)), ("seqnum", "\(seqnum)")]
        if major != Self.noNumber { fields.append(("major", "\(major)")) }
        if minor != Self.noNumber { fields.append(("minor", "\(minor)")) }
        fields += [
            ("subsystem", jsonString(subsystem)),
            ("devpath", jsonString(devpath)),
            ("devpath_truncated", "\(flags.contains(.devpathTruncated))"),
            ("subsystem_truncated", "\(flags.contains(.subsystemTruncated))"),
        ]
        return fields
    }
}

// MARK: helpers

/// A name from a record or the mount table as text on a line: its bytes as UTF-8
/// (anything else becomes U+FFFD), with a newline written `\012` as mountinfo does,
/// so a record always stays one line. Other characters, spaces included, are shown
/// as they are; JSON has every field exactly.
func textField(_ bytes: [UInt8]) -> String {
    let newline = UInt8(ascii: "\n")
    guard bytes.contains(newline) else { return String(decoding: bytes, as: UTF8.self) }
    // Bytes, not Characters: "\r\n" is one Character and would hide its newline.
    return String(decoding: bytes.flatMap { $0 == newline ? Array("\\012".utf8) : [$0] }, as: UTF8.self)
}

/// Bytes from a record or the table as a JSON string (UTF-8; anything else U+FFFD).
func jsonString(_ bytes: [UInt8]) -> String { jsonString(String(decoding: bytes, as: UTF8.self)) }
