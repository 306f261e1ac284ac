// One function per decoder of kernel messages (Sources/SystemSources): each runs the
// decoder on the fuzzer's bytes and checks that it never crashes, that a refusal is
// a DecodeError with a reason, and a property of what it accepts: that it reads back
// the same once written out again, and that every record it becomes has the length
// the layout table gives.
import SystemSources
import WatchQueueCore

public enum SourceTargets {
    static func expectReason(_ error: DecodeError, _ format: DecodeError.Format) {
        fuzzCheck(error.format == format, "error from \(error.format) in the \(format) decoder")
        fuzzCheck(!error.reason.isEmpty, "empty reason")
    }

    /// Encodes a record and checks it against the layout table and its own header.
    static func checkRecord(_ encode: (UnsafeMutableRawBufferPointer) -> Int, type: UInt32, subtype: UInt8) {
        var buffer = [UInt8](repeating: 0xa5, count: 128)
        let length = buffer.withUnsafeMutableBytes { encode(UnsafeMutableRawBufferPointer(rebasing: $0[0..<120])) }
        let header = buffer.withUnsafeBytes { RecordHeader(bytes: $0) }
        fuzzCheck(SystemRecordLayout.isValid(type: type, subtype: subtype, length: length),
                  "type \(type) subtype \(subtype) length \(length) not in the layout table")
        fuzzCheck(header.type == type && header.subtype == subtype && header.length == length && header.watchID == 0,
                  "header \(header) for type \(type) subtype \(subtype) length \(length)")
        fuzzCheck(buffer[length...].allSatisfy { $0 == 0xa5 }, "the encoder wrote past its length \(length)")
    }

    // MARK: mountinfo

    public static func mountinfo(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        // Each line alone: what is accepted writes out (escaped) and reads back the same.
        var number = 0
        for line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            do {
                let entry = try MountInfoEntry(parsing: line, lineNumber: number)
                let again = try MountInfoEntry(parsing: entry.line, lineNumber: number)
                fuzzCheck(again == entry, "line \(number) reads back differently from \(fuzzHex(entry.line))")
                fuzzCheck(!entry.line.contains(UInt8(ascii: "\n")), "a written line holds a newline")
            } catch {
                expectReason(error, .mountinfo)
            }
        }
        // Two tables, cut at a point the input draws: their diff is well formed.
        var input = FuzzInput(data)
        let cut = Int(input.u16()) % (bytes.count + 1)
        let before: MountTable, after: MountTable
        do {
            before = try MountTable(parsing: bytes[..<cut])
            after = try MountTable(parsing: bytes[cut...])
        } catch {
            expectReason(error, .mountinfo)
            return
        }
        fuzzCheck(before.changes(to: before).isEmpty, "a table differs from itself")
        for change in before.changes(to: after) {
            let record = change.notification
            checkRecord(record.encode(into:), type: SystemNotificationType.mount, subtype: record.subtype.rawValue)
            let id = change.entry.legacyMountID
            switch change.subtype {
            case .newMount: fuzzCheck(after[id] != nil && change.auxiliaryMount?.legacyID == id, "new mount \(id)")
            case .unmount: fuzzCheck(before[id] != nil && change.auxiliaryMount?.legacyID == id, "unmount \(id)")
            case .moveFrom, .moveTo, .readOnly, .setattr:
                fuzzCheck(before[id] != nil && after[id] != nil, "\(change.subtype) of \(id) not in both tables")
            case .expiry: fuzzCheck(false, "a diff gave an expiry")
            }
        }
    }

    // MARK: uevent

    public static func uevent(_ data: UnsafeRawBufferPointer) {
        do {
            let event = try Uevent(decoding: data)
            // Every byte is kept: the event writes out to the very datagram.
            fuzzCheck(event.datagram.elementsEqual(data), "uevent writes out differently")
            let record = event.notification
            checkRecord(record.encode(into:), type: SystemNotificationType.device, subtype: record.action.rawValue)
            fuzzCheck(record.flags.contains(.devpathTruncated) == (event.devpath.count > 80), "devpath flag")
            fuzzCheck(record.flags.contains(.subsystemTruncated) == (event.subsystem.count > 16), "subsystem flag")
        } catch {
            expectReason(error, .uevent)
        }
    }

    // MARK: fanotify

    public static func fanotify(_ data: UnsafeRawBufferPointer) {
        var streamed: [Fanotify.Event] = []
        let streamError: DecodeError?
        do {
            try Fanotify.forEachEvent(data) { streamed.append($0) }
            streamError = nil
        } catch {
            expectReason(error, .fanotify)
            streamError = error
        }
        do {
            let events = try Fanotify.decode(data)
            fuzzCheck(streamError == nil && events == streamed, "decode and forEachEvent disagree")
            // An independent walk by event_len finds as many events.
            var offset = 0, count = 0
            while offset + 4 <= data.count {
                offset += Int(data.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
                count += 1
            }
            fuzzCheck(offset == data.count && count == events.count, "\(events.count) events, \(count) by event_len")
            for event in events {
                let attach = event.mask & Fanotify.mountAttach != 0, detach = event.mask & Fanotify.mountDetach != 0
                switch event.kind {
                case .overflow: fuzzCheck(event.mask & Fanotify.queueOverflow != 0, "overflow without its bit")
                case .move: fuzzCheck(attach && detach, "move without both bits")
                case .attach: fuzzCheck(attach && !detach, "attach")
                case .detach: fuzzCheck(!attach && detach, "detach")
                }
            }
        } catch {
            fuzzCheck(streamError == error, "decode and forEachEvent fail differently")
        }
    }

    // MARK: proc connector

    public static func connector(_ data: UnsafeRawBufferPointer) {
        do {
            guard case .event(let record, _) = try ProcConnector.decode(data) else { return }
            checkRecord(record.encode(into:), type: SystemNotificationType.process, subtype: record.event.subtype.rawValue)
            // The common fields come from where the kernel puts them.
            let timestamp = data.loadUnaligned(fromByteOffset: ProcConnector.eventOffset + 8, as: UInt64.self).littleEndian
            fuzzCheck(record.timestampNS == timestamp, "timestamp")
            let bytes = record.bytes
            fuzzCheck(bytes.count == record.event.subtype.recordLength, "length")
            let pid = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self).littleEndian }
            fuzzCheck(pid == record.pid, "pid at 16")
            if case .exit(let exit) = record.event {
                fuzzCheck(exit.exitCode <= 0xff && exit.exitSignal < 0x7f, "exit \(exit)")
                fuzzCheck(!(exit.killedBySignal && exit.exitCode != 0), "killed with an exit code")
                fuzzCheck(!exit.dumpedCore || exit.killedBySignal, "a core without a signal")
            }
        } catch {
            expectReason(error, .procConnector)
        }
    }
}
