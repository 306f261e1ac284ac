import Foundation
import Testing

/// What one queue's reader saw, checked against the queue's own counters.
private struct QueueLog {
    /// Records per watch ID, in the order read, and the loss records between them.
    enum Entry: Equatable { case record(watchID: Int, sequence: UInt64), loss }
    var entries: [Entry] = []

    init(_ text: String) throws {
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words == ["loss"] {
                entries.append(.loss)
            } else if words.count == 3, words[0] == "rec", let id = Int(words[1]), let sequence = UInt64(words[2]) {
                entries.append(.record(watchID: id, sequence: sequence))
            } else {
                throw FixtureError("unexpected reader line \(line)")
            }
        }
    }

    var records: Int { entries.filter { $0 != .loss }.count }

    /// Problems with the stream: per watch, sequences must rise by `step` (the
    /// filter keeps every `step`-th), and every gap, including one at either end,
    /// must have a loss record between the records around it.
    func problems(watchIDs: [Int], count: UInt64, step: UInt64) -> [String] {
        var problems: [String] = []
        for id in watchIDs {
            var expected: UInt64 = 0
            var lossSince = false
            for entry in entries {
                switch entry {
                case .loss:
                    lossSince = true
                case .record(id, let sequence):
                    if sequence < expected || sequence % step != 0 {
                        problems.append("watch \(id): \(sequence) after \(expected) was expected (duplicate, reordered or unfiltered)")
                    } else if sequence > expected && !lossSince {
                        problems.append("watch \(id): \(expected)..<\(sequence) vanished without a loss record")
                    }
                    expected = sequence + step
                    lossSince = false
                case .record:
                    break
                }
            }
            if expected < count && !lossSince {
                problems.append("watch \(id): \(expected)..<\(count) vanished at the end without a loss record")
            }
        }
        return problems
    }
}

// Concurrent posters and readers through the mount, on small queues so records are
// lost: no record may vanish without a loss record, and the counters must add up.
extension MountTests {
    @Suite("stress") struct Stress {
        @Test("3 posters × 4000 records into 4 small queues, read concurrently: every gap has its loss record")
        func postersAndReaders() throws {
            let posters = 3, count: UInt64 = 4000
            let batches = [1, 4, 8] // records per write(2), per poster
            let queues = [("q0", 4), ("q1", 5), ("q2", 6), ("q3", 8)]
            try withMount { m throws in
                var setup = "set -e\n"
                for (name, size) in queues { setup += "touch queues/\(name); echo \(size) > queues/\(name).size\n" }
                // q3 keeps even sequence numbers only (the poster's subtype is the low bit).
                setup += "echo 'type=256 subtypes=0' > queues/q3.filter\n"
                for p in 0..<posters {
                    setup += "mkdir sources/p\(p)\n"
                    for (name, _) in queues { setup += "echo '\(name) \(p + 1)' >> sources/p\(p)/watches\n" }
                }
                _ = try m.out(setup)
                let run = try m.sh("""
                    for q in \(queues.map(\.0).joined(separator: " ")); do
                        timeout -s KILL 60 $C reader queues/$q 64 $T/stop > $T/$q.log &
                    done
                    pids=""
                    for pb in \((0..<posters).map { "\($0):\(batches[$0])" }.joined(separator: " ")); do
                        p=${pb%:*}; b=${pb#*:}
                        timeout -s KILL 60 $C post-seq sources/p$p/post.bin 256 0 \(count) $b > $T/post$p &
                        pids="$pids $!"
                    done
                    for pid in $pids; do wait $pid || echo "poster $pid failed" >&2; done
                    touch $T/stop
                    wait
                    cat $T/post*
                    """, timeout: 90)
                #expect(run.status == 0 && run.stderr.isEmpty, "\(run)")
                #expect(run.stdout == String(repeating: "posted=\(count)\n", count: posters), "\(run)")
                var totalLost = 0
                for (name, _) in queues {
                    let log = try QueueLog(String(contentsOfFile: m.scratch + "/\(name).log", encoding: .utf8))
                    let step: UInt64 = name == "q3" ? 2 : 1
                    let problems = log.problems(watchIDs: Array(1...posters), count: count, step: step)
                    #expect(problems.isEmpty, "\(name): \(problems.prefix(10))")
                    let status = try m.status(name)
                    let posted = try #require(status["posted"]), filtered = try #require(status["filtered"])
                    let lost = try #require(status["lost"]), read = try #require(status["read"])
                    #expect(posted == posters * Int(count), "\(name) \(status)")
                    #expect(filtered == (name == "q3" ? posters * Int(count) / 2 : 0), "\(name) \(status)")
                    #expect(log.records == read, "\(name): the reader saw \(log.records) records, status says \(read)")
                    #expect(log.records + lost == posted - filtered, "\(name): \(log.records) read + \(lost) lost != \(posted) - \(filtered)")
                    #expect(status["queued"] == 0 && status["loss_pending"] == 0, "\(name) \(status)")
                    totalLost += lost
                }
                // The queues are small on purpose: something must have been lost.
                #expect(totalLost > 0, "no loss happened; the test did not exercise loss records")
            }
        }
    }
}
