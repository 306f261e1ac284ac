import FuseBinding
import Testing
@testable import WatchQueueFS

/// The open-file table's listings stay within their budget, and what is freed is
/// available again.
@Suite("open directories")
struct OpenFilesTests {
    static func entries(_ count: Int) -> [DirectoryEntry] {
        (0..<count).map { DirectoryEntry(name: "s\($0)", inode: Inode($0 + 100), mode: 0o040000) }
    }

    @Test func listingsAreKeptWithinTheBudgetAndFreedOnClose() {
        let files = OpenFiles(listingBudget: 10)
        let a = files.open(OpenFile(node: .sourcesDirectory, flags: 0))
        let b = files.open(OpenFile(node: .sourcesDirectory, flags: 0))
        files.keep(Self.entries(8), for: a)
        #expect(files.keptListing(a)?.count == 8)
        files.keep(Self.entries(8), for: b) // 16 > 10: not kept, made again per READDIR
        #expect(files.keptListing(b) == nil)
        files.keep(Self.entries(6), for: a) // replaces a's 8
        files.keep(Self.entries(4), for: b)
        #expect(files.keptListing(a)?.count == 6 && files.keptListing(b)?.count == 4)
        _ = files.close(a)
        let c = files.open(OpenFile(node: .queuesDirectory, flags: 0))
        files.keep(Self.entries(6), for: c)
        #expect(files.keptListing(c)?.count == 6)
        files.keep(Self.entries(1), for: a) // closed: nothing kept, nothing charged
        #expect(files.keptListing(a) == nil)
        files.keep(Self.entries(1), for: c) // 4 + 1 fits once c's 6 are given back
        #expect(files.keptListing(c)?.count == 1)
    }
}
