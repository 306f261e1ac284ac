// The key observer's event decoder (Sources/KeyObserver) on the fuzzer's bytes: it
// must never crash, refuse with a typed reason, and what it accepts must agree with
// the layout of key_event.h.
import KeyObserver

public enum KeyEventTarget {
    public static func keyEvent(_ data: UnsafeRawBufferPointer) {
        let event: KeyEvent
        do {
            event = try KeyEvent(decoding: data)
        } catch {
            fuzzCheck(!error.reason.isEmpty, "empty reason")
            fuzzCheck(error.offset >= 0 && error.offset < max(data.count, KeyEvent.fullSize), "offset \(error.offset)")
            return
        }
        fuzzCheck((try? KeyEvent(decoding: data)) == event, "decoding the same bytes twice differs")
        fuzzCheck(data.count == (event.syscall == .keyctl ? KeyEvent.shortSize : KeyEvent.fullSize),
                  "\(data.count) bytes accepted for \(event.syscall)")
        fuzzCheck(event.result >= 0, "negative result accepted")
        if let op = event.keyctlOperation {
            fuzzCheck(event.syscall == .keyctl && KeyEvent.trackedOperations.contains(op), "keyctl operation \(op)")
        } else {
            fuzzCheck(event.syscall != .keyctl, "keyctl event without its operation")
        }
        switch event.operation {
        case .added(_, _, let type, let description), .requested(_, _, let type, let description):
            // At most the field less its NUL, each byte at worst a 3-byte U+FFFD.
            fuzzCheck(type.utf8.count <= 31 * 3 && description.utf8.count <= 255 * 3, "strings longer than their fields")
            fuzzCheck(!type.utf8.contains(0) && !description.utf8.contains(0), "a NUL kept in a string")
        default:
            fuzzCheck(event.syscall == .keyctl, "a keyctl operation from \(event.syscall)")
        }
        // A serial is a real key (> 0); a special id is never positive.
        for reference in event.operation.references.dropFirst(event.syscall == .keyctl ? 0 : 1) {
            switch reference {
            case .serial(let serial): fuzzCheck(serial > 0, "serial \(serial)")
            case .special(let id, let uid): fuzzCheck(id <= 0 && uid == event.uid, "special \(id) of \(uid)")
            }
        }
        // Resolving: nothing changes when nothing resolves; every user keyring goes
        // when all resolve, and nothing but the operation changes.
        fuzzCheck(event.resolvingUserKeyrings { _, _ in nil } == event, "resolving nothing changed the event")
        let resolved = event.resolvingUserKeyrings { _, id in 1000 - id }
        fuzzCheck(resolved.operation.references.count == event.operation.references.count, "references lost")
        for reference in resolved.operation.references {
            if case .special(let id, _) = reference { fuzzCheck(id != -4 && id != -5, "user keyring \(id) left") }
        }
        var same = resolved
        same.operation = event.operation
        fuzzCheck(same == event, "resolving changed more than the operation")
    }
}
