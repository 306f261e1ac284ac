import Testing
@testable import WatchQueueCore
#if canImport(Glibc)
import Glibc
#endif

// Every failure the libFuzzer targets in Fuzz/ found, as a plain unit test (the
// input that failed, and what it must do now). Fuzz/README.md says how to run them.
@Suite("8. Fuzz regressions") struct FuzzRegressionTests {
    /// fuzz-values, fuzz-artifacts/values-crash-22c275fe…: ' 3\n2' was accepted as
    /// size 32: the single-value parser deleted line ends instead of splitting on them.
    @Test func aLineEndInsideASingleValueSeparatesTokens() throws {
        for text in [" 3\n2", "3\r\n2", "1\n\n2\n"] {
            expectFailure(EINVAL, naming: ["one value"]) { try Grammar.size(text, max: 16_384) }
            expectFailure(EINVAL, naming: ["one value"]) { try Grammar.objectID(text) }
            expectFailure(EINVAL, naming: ["one value"]) { try Grammar.typeFile(text) }
        }
        expectFailure(EINVAL) { try Grammar.typeFile("ke\ny") }
        // Blanks and line ends around the one token are still fine.
        #expect(try Grammar.size("\n 32 \r\n", max: 16_384) == 32)
        #expect(try Grammar.objectID("7\n") == 7)
        #expect(try Grammar.typeFile("\tkey\n") == 1)
    }

    /// fuzz-engine under LeakSanitizer, fuzz-artifacts/leak-8d0be4dc…: an engine
    /// dropped with watches in place leaked its queues and sources (each watch is a
    /// reference cycle). The engine now breaks the cycles when it goes away; this
    /// test leaks under `mount-scripts/sanitize address` if that regresses.
    @Test func anEngineDroppedWithWatchesInPlaceFreesEverything() throws {
        for _ in 0..<10 {
            let f = Fixture()
            let queue = try f.queue("q")
            let source = try f.source("s")
            try f.watches("q 1", on: source)
            try f.post("1 u8=2", to: source)
            #expect(try f.status(queue).queued == 1)
        }
    }
}
