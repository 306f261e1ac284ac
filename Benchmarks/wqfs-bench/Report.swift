// Results: rows of the table, the markdown table on stdout, and JSON.
#if canImport(Glibc)
import Glibc
#endif

enum Unit: String {
    case microseconds = "µs"
    /// Per-call costs (keyctl with the key observer attached or not).
    case nanoseconds = "ns"
    case recordsPerSecond = "records/s"
    case copiesPerSecond = "copies/s"
    case bytes = "bytes"
    /// CPU time in clock ticks (/proc/PID/stat), for the idle cost.
    case ticks = "ticks"

    var higherIsBetter: Bool { self == .recordsPerSecond || self == .copiesPerSecond }
}

struct Target {
    /// What the issue asks, in words.
    var text: String
    var met: Bool
}

struct Row {
    var section: String
    var name: String
    var unit: Unit
    var wqfs: Double
    var floor: Double? = nil
    var pipe: Double? = nil
    /// wqfs / floor and wqfs / pipe: the median of the per-repetition ratios for
    /// rates, the ratio of the pooled figures for latencies.
    var ratioFloor: Double? = nil
    var ratioPipe: Double? = nil
    var target: Target? = nil
    var note: String? = nil
}

struct Machine {
    var date: String
    var host: String
    var cpu: String
    var cores: String
    var kernel: String
    var libfuse: String
    var swift: String
    var loadBefore: String
    var loadAfter = ""
    var mode: String

    static func current(quick: Bool) -> Machine {
        Machine(date: shellOutput("date -u +%Y-%m-%dT%H:%M:%SZ"),
                host: shellOutput("uname -n"),
                cpu: shellOutput("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'"),
                cores: shellOutput("nproc"),
                kernel: shellOutput("uname -r"),
                libfuse: shellOutput("pkg-config --modversion fuse3"),
                swift: shellOutput("swift --version 2>/dev/null | head -1"),
                loadBefore: loadAverage(),
                mode: quick ? "quick" : "full")
    }

    static func loadAverage() -> String {
        (readText("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

enum Format {
    static func value(_ value: Double?, _ unit: Unit) -> String {
        guard let value, value.isFinite else { return "—" }
        switch unit {
        case .microseconds: return fixed(value, value < 100 ? 1 : 0) + " µs"
        case .nanoseconds: return fixed(value, 0) + " ns"
        case .bytes: return fixed(value, 1) + " B"
        case .ticks: return fixed(value, 0) + " ticks"
        case .recordsPerSecond, .copiesPerSecond: return rate(value)
        }
    }

    static func rate(_ value: Double) -> String {
        if value >= 1e6 { return fixed(value / 1e6, 2) + " M/s" }
        if value >= 1e3 { return fixed(value / 1e3, 1) + " k/s" }
        return fixed(value, 0) + " /s"
    }

    static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "—" }
        return fixed(value, 2) + "×"
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = String(rounded)
        if digits == 0 {
            if text.hasSuffix(".0") { text.removeLast(2) }
            return text
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        if text.contains("e") { return text }
        let padded = String((fraction + String(repeating: "0", count: digits)).prefix(digits))
        return "\(parts[0]).\(padded)"
    }
}

enum Report {
    static func table(_ rows: [Row], machine: Machine) -> String {
        var out = "wqfs-bench (\(machine.mode)) \(machine.date) on \(machine.cpu), \(machine.cores) cores, Linux \(machine.kernel), libfuse \(machine.libfuse)\n"
        out += "load average before: \(machine.loadBefore); after: \(machine.loadAfter)\n\n"
        var section = ""
        var notes = [String]()
        for row in rows {
            if row.section != section {
                section = row.section
                out += "\n### \(section)\n\n"
                out += "| benchmark | wqfs | C floor | pipe | wqfs/floor | wqfs/pipe | target | met |\n"
                out += "|---|---:|---:|---:|---:|---:|---|:-:|\n"
            }
            let met = row.target.map { $0.met ? "yes" : "**no**" } ?? ""
            out += "| \(row.name) | \(Format.value(row.wqfs, row.unit)) | \(Format.value(row.floor, row.unit)) | "
            out += "\(Format.value(row.pipe, row.unit)) | \(Format.ratio(row.ratioFloor)) | \(Format.ratio(row.ratioPipe)) | "
            out += "\(row.target?.text ?? "") | \(met) |\n"
            if let note = row.note { notes.append("\(row.section), \(row.name): \(note)") }
        }
        if !notes.isEmpty { out += "\nNotes:\n\n" + notes.map { "* \($0)\n" }.joined() }
        return out
    }

    static func json(_ rows: [Row], machine: Machine) -> String {
        var out = "{\n  \"machine\": {"
        let fields: [(String, String)] = [("date", machine.date), ("host", machine.host), ("cpu", machine.cpu),
                                          ("cores", machine.cores), ("kernel", machine.kernel), ("libfuse", machine.libfuse),
                                          ("swift", machine.swift), ("load_before", machine.loadBefore),
                                          ("load_after", machine.loadAfter), ("mode", machine.mode)]
        out += fields.map { "\"\($0.0)\": \(string($0.1))" }.joined(separator: ", ")
        out += "},\n  \"results\": [\n"
        out += rows.map { row in
            var items = [("section", string(row.section)), ("name", string(row.name)), ("unit", string(row.unit.rawValue)),
                         ("wqfs", number(row.wqfs))]
            if let v = row.floor { items.append(("c_floor", number(v))) }
            if let v = row.pipe { items.append(("pipe", number(v))) }
            if let v = row.ratioFloor { items.append(("ratio_to_c_floor", number(v))) }
            if let v = row.ratioPipe { items.append(("ratio_to_pipe", number(v))) }
            if let t = row.target {
                items.append(("target", string(t.text)))
                items.append(("target_met", t.met ? "true" : "false"))
            }
            if let note = row.note { items.append(("note", string(note))) }
            return "    {" + items.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
        }.joined(separator: ",\n")
        out += "\n  ]\n}\n"
        return out
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 { out += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}
