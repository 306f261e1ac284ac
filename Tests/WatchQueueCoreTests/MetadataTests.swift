import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import WatchQueueCore

/// Ownership, modes and times of the files the engine describes.
@Suite("Ownership and metadata")
struct MetadataTests {
    /// A clock that advances one second per reading.
    final class Clock: Sendable {
        let seconds = Locked<Int64>(1000)
        func now() -> Timestamp { seconds.withLock { $0 += 1; return Timestamp(seconds: $0, nanoseconds: 0) } }
    }

    @Test func objectsBelongToTheirCreatorWithOwnerOnlyQueueFiles() throws {
        let engine = Engine()
        let alice = Credentials(uid: 1000, gid: 100)
        let queue = try engine.createQueue(named: "q", owner: alice)
        let modes = QueueFile.allCases.map { engine.metadata(of: queue, file: $0)?.mode }
        #expect(modes == [0o600, 0o600, 0o600, 0o400])
        #expect(QueueFile.allCases.map(\.suffix) == ["", ".size", ".filter", ".status"])
        #expect(engine.metadata(of: queue, file: .queue)?.uid == 1000)
        #expect(engine.metadata(of: queue, file: .queue)?.gid == 100)
        let source = try engine.createSource(named: "s", owner: alice, mode: 0o750)
        let sourceModes = SourceFile.allCases.map { engine.metadata(of: source, file: $0)?.mode }
        #expect(sourceModes == [0o750, 0o644, 0o644, 0o200, 0o200, 0o644, 0o444, 0o444])
        #expect(SourceFile.allCases.map(\.name) == ["", "id", "type", "post", "post.bin", "watches", "status", "table"])
    }

    @Test func permissionBitsFollowOwnerGroupOtherAndRootBypassesReadWrite() {
        let time = Timestamp(seconds: 0, nanoseconds: 0)
        let file = Metadata(owner: Credentials(uid: 1000, gid: 100), mode: 0o640, at: time)
        #expect(file.permits([.read, .write], to: Credentials(uid: 1000, gid: 1)))
        #expect(file.permits(.read, to: Credentials(uid: 2000, gid: 100)))
        #expect(!file.permits(.write, to: Credentials(uid: 2000, gid: 100)))
        #expect(file.permits(.read, to: Credentials(uid: 2000, gid: 5, groups: [7, 100])))
        #expect(!file.permits(.read, to: Credentials(uid: 2000, gid: 5)))
        #expect(file.permits([.read, .write], to: .root))
        #expect(!file.permits(.execute, to: .root))
        #expect(Metadata(owner: .root, mode: 0o001, at: time).permits(.execute, to: .root))
        #expect(Metadata(owner: .root, mode: 0o17777, at: time).mode == 0o7777)
    }

    @Test func changesApplyAndStampTheChangeTimeWhileWritesStampModification() throws {
        let clock = Clock()
        let engine = Engine(clock: { clock.now() })
        let queue = try engine.createQueue(named: "q", owner: .root)
        let created = try #require(engine.metadata(of: queue, file: .size))
        let changed = try engine.changeMetadata(of: queue, file: .size, MetadataChange(uid: 5, gid: 6, mode: 0o10644))
        #expect(changed.uid == 5 && changed.gid == 6 && changed.mode == 0o644)
        #expect(changed.changed.seconds > created.changed.seconds)
        #expect(changed.modified == created.modified)
        try engine.setSize(of: queue, to: 4)
        let resized = try #require(engine.metadata(of: queue, file: .size))
        #expect(resized.modified.seconds > changed.changed.seconds)
        #expect(engine.metadata(of: queue, file: .filter)?.modified == created.modified)
        _ = try engine.removeQueue(named: "q")
        #expect(engine.metadata(of: queue, file: .size) == nil)
        #expect(failure { try engine.changeMetadata(of: queue, file: .size, MetadataChange()) }?.errno == ENOENT)
    }
}
