import Foundation
#if NS_FUZZING
import CFuzzer
#endif

/// `ns-fuzz TARGET [libFuzzer options] [CORPUS...]`: runs one fuzz target
/// under libFuzzer. Only a build made by scripts/fuzz.sh (sanitizers,
/// coverage, NS_FUZZING) can fuzz; any other build says so and stops.
@main
enum NSFuzz {
    static func main() {
        var arguments = CommandLine.arguments
        let names = FuzzTargets.all.keys.sorted().joined(separator: ", ")
        guard arguments.count > 1, let target = FuzzTargets.all[arguments[1]] else {
            fail("usage: ns-fuzz TARGET [libFuzzer options] [CORPUS...]; targets: \(names)")
        }
        arguments.remove(at: 1)
        selected = target
        #if NS_FUZZING
        var argc = CInt(arguments.count)
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = .allocate(capacity: arguments.count + 1)
        for (i, a) in arguments.enumerated() { argv![i] = strdup(a) }
        argv![arguments.count] = nil
        exit(LLVMFuzzerRunDriver(&argc, &argv, runOne))
        #else
        fail("this ns-fuzz was built without libFuzzer; run scripts/fuzz.sh TARGET SECONDS")
        #endif
    }

    /// The target libFuzzer's callback runs; a C callback cannot capture it.
    nonisolated(unsafe) static var selected: (@Sendable ([UInt8]) -> Void)?

    #if NS_FUZZING
    private static let runOne: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt = { data, size in
        let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        NSFuzz.selected?(input)
        return 0
    }
    #endif

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(2)
    }
}
