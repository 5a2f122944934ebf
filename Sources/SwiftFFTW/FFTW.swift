import CFFTW
import Foundation
import Numerics

/// A failed FFTW call, or a buffer that does not fit a plan.
public struct FFTWError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let reason: String
    public var description: String { "\(call) failed: \(reason)" }
}

/// Process-wide FFTW state: threads, planner safety and wisdom.
public enum FFTW {
    // Plans may be made from several threads (test runners, pipeline stages);
    // FFTW's planner is not reentrant unless told so, once, before any plan.
    private static let setUp: Void = {
        fftwf_init_threads()
        fftwf_make_planner_thread_safe()
    }()

    static func ensureSetUp() { _ = setUp }

    /// FFTW's SIMD alignment class of a buffer's start.
    static func alignment(of p: UnsafeMutablePointer<Complex<Float>>) -> Int32 {
        p.withMemoryRebound(to: Float.self, capacity: 1) { fftwf_alignment_of($0) }
    }

    /// A plan runs only on buffers aligned as the ones it was made with.
    static func checkAlignment(_ call: String, _ input: UnsafeMutablePointer<Complex<Float>>,
                               _ output: UnsafeMutablePointer<Complex<Float>>, plan: Int32) throws(FFTWError) {
        guard alignment(of: input) == plan, alignment(of: output) == plan else {
            throw FFTWError(call: call, reason: "buffer alignment differs from the plan's; use ComplexBuffer")
        }
    }

    /// The smallest length at least `n` whose prime factors are all 2, 3, 5
    /// or 7: FFTW's fast codelets. A length with a larger prime factor (the
    /// fast CCD's 1024 x 68 readout is 2^12 x 17) runs several times slower.
    public static func fastLength(atLeast n: Int) -> Int {
        var m = max(1, n)
        while true {
            var r = m
            for p in [2, 3, 5, 7] { while r % p == 0 { r /= p } }
            if r == 1 { return m }
            m += 1
        }
    }

    public static var version: String { String(cString: nsfftw_version()) }

    /// Threads used by plans made from now on (1 = serial).
    public static func setPlannerThreads(_ count: Int) {
        ensureSetUp()
        fftwf_plan_with_nthreads(Int32(max(1, count)))
    }

    /// Loads accumulated planner wisdom; returns false when the file does not exist.
    @discardableResult
    public static func importWisdom(from path: String) throws -> Bool {
        ensureSetUp()
        guard FileManager.default.fileExists(atPath: path) else { return false }
        guard fftwf_import_wisdom_from_filename(path) != 0 else {
            throw FFTWError(call: "fftwf_import_wisdom_from_filename(\(path))",
                            reason: "the file is not FFTW single-precision wisdom, or is unreadable")
        }
        return true
    }

    public static func exportWisdom(to path: String) throws {
        ensureSetUp()
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        guard fftwf_export_wisdom_to_filename(path) != 0 else {
            throw FFTWError(call: "fftwf_export_wisdom_to_filename(\(path))", reason: "cannot write the file")
        }
    }

    /// The planner's wisdom as FFTW's text, to hand to other processes.
    public static func exportWisdom() throws -> String {
        ensureSetUp()
        guard let text = fftwf_export_wisdom_to_string() else {
            throw FFTWError(call: "fftwf_export_wisdom_to_string", reason: "out of memory")
        }
        defer { free(text) }
        return String(cString: text)
    }

    public static func importWisdom(text: String) throws {
        ensureSetUp()
        guard fftwf_import_wisdom_from_string(text) != 0 else {
            throw FFTWError(call: "fftwf_import_wisdom_from_string", reason: "the text is not FFTW single-precision wisdom")
        }
    }

    /// Forgets all wisdom (plans made afterwards are measured anew).
    public static func forgetWisdom() {
        ensureSetUp()
        fftwf_forget_wisdom()
    }
}
