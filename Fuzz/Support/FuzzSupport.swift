// Shared by the libFuzzer targets in Fuzz/: reading structured choices out of the
// fuzzer's bytes, failing loudly, and replaying inputs in a normal build.
#if canImport(Glibc)
import Glibc
#endif
#if FUZZING
import CFuzzerDriver
#endif

/// The whole `main` of a fuzz target. `callback` is a C function (libFuzzer calls it
/// back), so each target passes a closure that captures nothing.
public enum FuzzMain {
    public typealias Callback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32

    /// In a fuzzer build (`-DFUZZING`, Fuzz/run) starts libFuzzer's driver on
    /// `callback`; in a normal build replays the inputs named on the command line.
    public static func run(_ callback: Callback) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
        #else
        FuzzReplay.main { bytes in _ = callback(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) }
        #endif
    }
}

/// Takes values off the front of the fuzzer's input; past the end every value is 0.
public struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var isEmpty: Bool { offset >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A value in 0..<bound (0 when bound is 0).
    public mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(byte()) % bound }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// True about once in `n` draws.
    public mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }

    public mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }

    public mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in byte() } }
}

/// Stops the run with a message: libFuzzer records the input as a crash.
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    guard !condition() else { return }
    let text = "fuzz check failed at \(file):\(line): \(message())\n"
    _ = text.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    abort()
}

/// Hex, for messages.
public func fuzzHex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// The entry of a normal (non-fuzzer) build of a target: runs each file named on
/// the command line, or each file in each directory named, through `target` once.
/// `fuzz-engine Fuzz/corpus/engine` replays a corpus; a crash file reproduces.
enum FuzzReplay {
    static func main(_ target: (UnsafeRawBufferPointer) -> Void) -> Never {
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            for path in files(at: argument) {
                guard let data = read(path) else {
                    say("cannot read \(path)")
                    exit(1)
                }
                data.withUnsafeBytes { target($0) }
                count += 1
            }
        }
        if CommandLine.arguments.count == 1 {
            say("usage: \(CommandLine.arguments[0]) FILE|DIRECTORY...  (build with Fuzz/run to fuzz)")
            exit(2)
        }
        say("\(count) inputs ran")
        exit(0)
    }

    static func say(_ text: String) {
        _ = (text + "\n").utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    }

    static func files(at path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if !name.hasPrefix(".") { names.append(path + "/" + name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { return data }
            data += chunk[0..<n]
        }
    }
}
