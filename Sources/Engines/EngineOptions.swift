import Foundation
import Parameters
import Recon

/// Everything that steers a reconstruction.
public struct EngineOptions: Codable, Equatable, Sendable {
    /// The engine, by its name in `EngineRegistry`.
    public var algorithm = "dm"
    /// RAAR's relaxation (1 gives the difference map).
    public var beta = ProjectionEngine.defaultBeta
    public var iterations: Int = 100
    /// Engines run one after another, each for its count of iterations
    /// (`dm:100,ml:100`); empty: `algorithm` for `iterations`.
    public var engines: [EngineRun] = []
    /// First iteration (0-based) that also updates the probe.
    public var probeUpdateStart: Int = 2
    /// Object division: O = (sum P* psi + eps) / (sum |P|^2 + eps), eps = this x max(sum |P|^2).
    public var objectRegularization: Double = 1e-3
    /// Probe division: P = sum O* psi / (sum |O|^2 + eps), eps = this x max(sum |O|^2).
    public var probeRegularization: Double = 1e-3
    /// Mutually incoherent probe modes (`ProbeModes`); 1: a coherent probe.
    public var probeModes: Int = 1
    /// Probe support: a disc of this radius, as a fraction of the frame size (nil: none).
    public var probeSupport: Double? = nil
    /// Frames transformed together.
    public var batch: Int = 8
    /// How far the Fourier projection fits each frame (see `PowerBound`).
    public var powerBound: PowerBound = .poisson(1)
    /// Sub-pixel positions are modelled to 1/this of a pixel by shifting the
    /// probe (see `SubpixelClasses`); 0 rounds positions to whole pixels.
    public var subpixelSteps: Int = 4
    /// ML's object smoothness regularisation (see `MaximumLikelihoodEngine`); 0: none.
    public var objectSmoothness = 0.0
    /// rPIE's frames per mini-batch and its regularisation (see `RegularizedPIEEngine`).
    public var minibatch = RegularizedPIEEngine.defaultMinibatch
    public var alpha = 0.1
    /// How FFTW picks its algorithms (see `FFTPlanning`).
    public var fftPlanning: FFTPlanning = .measure
    /// FFTW wisdom kept in this file and shared by the ranks (see `FFTWisdom`); nil: none.
    public var fftWisdom: String? = nil

    public init() {}

    /// Every option, declared once: the engine's name, each registered
    /// engine's own parameters, and those all engines share. The pipeline
    /// stages, the command line, `--show-parameters`, the live `set` and
    /// `problems()` all check against this.
    public static var parameters: [ParameterSpec] {
        [ParameterSpec("algorithm", .choice(EngineRegistry.names), default: .string(EngineOptions().algorithm),
                       doc: "the engine: " + EngineRegistry.standard.map { "\($0.name) (\($0.summary))" }.joined(separator: ", "))]
            + EngineRegistry.engineParameters + sharedParameters
    }

    /// The parameters every engine takes.
    public static var sharedParameters: [ParameterSpec] {
        let d = EngineOptions()
        return [
            ParameterSpec("iterations", .integer(0...1_000_000), default: .integer(d.iterations), doc: "iterations"),
            ParameterSpec("engines", .string, default: .string(""),
                          doc: "engines in turn, each for its iterations, e.g. dm:100,ml:100 (the state carries over; \"\": algorithm for iterations)"),
            ParameterSpec("probe_start", .integer(0...1_000_000), default: .integer(d.probeUpdateStart),
                          doc: "first iteration (0-based) that updates the probe"),
            ParameterSpec("probe_modes", .integer(1...ProbeModes.maximum), default: .integer(d.probeModes),
                          doc: "mutually incoherent probe modes for a partially coherent beam (the modes are kept orthogonal and sorted by power; DM and RAAR keep an exit wave per mode, so their frame memory grows by this factor)"),
            ParameterSpec("probe_support", .number(0...1), default: .number(0),
                          doc: "probe support radius as a fraction of the frame (0: none)"),
            ParameterSpec("object_regularization", .number(0...1), default: .number(d.objectRegularization),
                          doc: "object division's regularization, a fraction of the largest illumination sum"),
            ParameterSpec("probe_regularization", .number(0...1), default: .number(d.probeRegularization),
                          doc: "probe division's regularization, a fraction of the largest object-intensity sum"),
            ParameterSpec("batch", .integer(1...4096), default: .integer(d.batch), doc: "exit waves transformed together (with probe modes, every mode's of batch / modes frames)"),
            ParameterSpec("power_bound", .string, default: .string(d.powerBound.description),
                          doc: "Fourier projection's power bound: poisson:K (0 < K <= 4), relax:R (PtyPy's fourier_relax_factor, 0 < R < 1) or none"),
            ParameterSpec("subpixel", .integer(0...64), default: .integer(d.subpixelSteps),
                          doc: "model sub-pixel positions to 1/k pixel by shifted probes (0: whole pixels)"),
            ParameterSpec("fft_planning", .choice(FFTPlanning.allCases.map(\.rawValue)), default: .string(d.fftPlanning.rawValue),
                          doc: "FFTW planning: measure (fastest; FFTW may pick other algorithms from run to run, which round differently, about 1e-2 relative after 100 iterations) or estimate (bit-identical results for identical runs)"),
            ParameterSpec("fft_wisdom", .string, default: .string(""),
                          doc: "FFTW wisdom file: rank 0 loads it, measures what is missing and saves it, every rank plans from it, so runs that share it are bit-identical at measure's speed (\"\": none)"),
        ]
    }

    /// The options from validated parameters (see `parameters`).
    public init(_ p: ParameterSet) throws(ParameterProblems) {
        var problems: [String] = []
        algorithm = p.string("algorithm")
        beta = p.number("beta")
        iterations = p.integer("iterations")
        if let runs = EngineRun.parse(p.string("engines")) { engines = runs } else {
            problems.append("engines: must be NAME:ITERATIONS[,NAME:ITERATIONS...], got \"\(p.string("engines"))\"")
        }
        probeUpdateStart = p.integer("probe_start")
        probeModes = p.integer("probe_modes")
        probeSupport = p.givenNumber("probe_support")
        objectRegularization = p.number("object_regularization")
        probeRegularization = p.number("probe_regularization")
        batch = p.integer("batch")
        if let bound = PowerBound(parsing: p.string("power_bound")) { powerBound = bound } else {
            problems.append("power_bound: must be poisson:K, relax:R or none, got \"\(p.string("power_bound"))\"")
        }
        subpixelSteps = p.integer("subpixel")
        objectSmoothness = p.number("object_smoothness")
        minibatch = p.integer("minibatch")
        alpha = p.number("alpha")
        fftPlanning = FFTPlanning(rawValue: p.string("fft_planning")) ?? .measure
        fftWisdom = p.givenString("fft_wisdom")
        problems += self.problems()
        guard problems.isEmpty else { throw ParameterProblems(problems) }
    }

    /// The options as the values of their declared parameters.
    public var parameterValues: [String: ParameterValue] {
        [
            "algorithm": .string(algorithm), "beta": .number(beta), "iterations": .integer(iterations), "engines": .string(EngineRun.text(engines)),
            "probe_start": .integer(probeUpdateStart), "probe_modes": .integer(probeModes), "probe_support": .number(probeSupport ?? 0),
            "object_regularization": .number(objectRegularization), "probe_regularization": .number(probeRegularization),
            "batch": .integer(batch), "power_bound": .string(powerBound.description), "subpixel": .integer(subpixelSteps), "object_smoothness": .number(objectSmoothness),
            "minibatch": .integer(minibatch), "alpha": .number(alpha),
            "fft_planning": .string(fftPlanning.rawValue), "fft_wisdom": .string(fftWisdom ?? ""),
        ]
    }

    /// Each problem, naming its parameter: the declared ranges, and what a range cannot say.
    public func problems() -> [String] {
        let values = parameterValues
        var out: [String] = Self.parameters.compactMap { spec in
            guard let v = values[spec.name], case .invalid(let problem) = spec.check(v) else { return nil }
            return "\(spec.name): \(problem)"
        }
        for run in engines {
            if let problem = EngineRegistry.problem(naming: run.name) { out.append("engines: \(problem)") }
            if !(0...1_000_000).contains(run.iterations) { out.append("engines: \(run.name)'s \(run.iterations) iterations are out of range 0...1000000") }
        }
        if probeModes > 1 {
            for name in Set(sequence.map(\.name)).sorted() where EngineRegistry.kind(named: name)?.modes == false {
                out.append("probe_modes: \(name) models one coherent probe; probe modes run with "
                           + EngineRegistry.standard.filter(\.modes).map(\.name).joined(separator: " or "))
            }
        }
        if let s = probeSupport, !(s > 0) { out.append("probe_support: a given support must be above 0 of the frame, got \(s)") }
        switch powerBound {
        case .none: break
        case .relative(let r): if !(r > 0 && r < 1) { out.append("power_bound: the relative power bound must be in (0, 1), got \(r)") }
        case .poisson(let k): if !(k > 0 && k <= 4) { out.append("power_bound: the Poisson power bound factor must be in (0, 4], got \(k)") }
        }
        return out
    }
}

extension EngineOptions {
    /// Frames whose exit waves are transformed together: `batch` transforms
    /// in all, over every probe mode's exit wave (a batch of K times the
    /// frames would leave the caches between its passes).
    public var framesPerBatch: Int { max(1, batch / probeModes) }

    /// The engines in turn (the sequence, or `algorithm` alone).
    public var sequence: [EngineRun] { engines.isEmpty ? [EngineRun(name: algorithm, iterations: iterations)] : engines }

    /// Iterations of the whole sequence.
    public var totalIterations: Int { sequence.reduce(0) { $0 + $1.iterations } }

    /// The options of the engine that runs iteration `i` (0-based; past
    /// the end, the last engine's).
    public func running(at i: Int) -> EngineOptions {
        var o = self
        var end = 0
        for run in sequence {
            end += run.iterations
            o.algorithm = run.name
            if i < end { break }
        }
        return o
    }
}

/// One engine of a sequence and its iterations.
public struct EngineRun: Codable, Equatable, Sendable {
    public var name: String
    public var iterations: Int

    public init(name: String, iterations: Int) {
        self.name = name
        self.iterations = iterations
    }

    /// "dm:100,ml:100"; "" is the empty sequence; nil when malformed.
    public static func parse(_ text: String) -> [EngineRun]? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return [] }
        var runs: [EngineRun] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count == 2, let n = Int(pieces[1].trimmingCharacters(in: .whitespaces)) else { return nil }
            let name = pieces[0].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { return nil }
            runs.append(EngineRun(name: name, iterations: n))
        }
        return runs
    }

    public static func text(_ runs: [EngineRun]) -> String {
        runs.map { "\($0.name):\($0.iterations)" }.joined(separator: ",")
    }
}

/// FFTW's planning. `measure` times candidate algorithms in each process and
/// is the fastest, but may choose differently from run to run and rank to
/// rank, and a different algorithm rounds differently, which the iterations
/// amplify: identical runs differ by up to 1e-2 relative in the object after
/// 100 iterations. `estimate` chooses by a fixed heuristic, so identical
/// inputs give bit-identical results; wisdom (`fftWisdom`) keeps measure's
/// choices, so runs that share it are bit-identical too.
public enum FFTPlanning: String, Codable, Equatable, Sendable, CaseIterable {
    case measure, estimate
}

/// The power bound of the Fourier projection: a frame whose amplitude misfit
/// sum over valid pixels of (|F psi| - sqrt(I))^2 is below the bound is left
/// as it is, and a larger misfit is only reduced to the bound, so the exit
/// waves do not fit noise and drift away from the overlap constraint.
public enum PowerBound: Codable, Equatable, Sendable, CustomStringConvertible {
    /// Exact projection, for noise-free data.
    case none
    /// PtyPy's fourier_relax_factor r: 0.25 r^2 x the frame's photons.
    case relative(Double)
    /// k x the misfit Poisson noise alone would leave: the sum over pixels of
    /// E(sqrt(X) - sqrt(lambda))^2 for X ~ Poisson(lambda), lambda the
    /// measured count. It follows the photon count, where a fixed fraction
    /// fits noise at low counts and stops short at high counts.
    case poisson(Double)

    /// Parses "none", "relax:R" or "poisson:K".
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count == 2 ? Double(parts[1]) : nil) {
        case ("none", _) where parts.count == 1: self = .none
        case ("relax", let v?): self = .relative(v)
        case ("poisson", let v?): self = .poisson(v)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .none: "none"
        case .relative(let r): "relax:\(r)"
        case .poisson(let k): "poisson:\(k)"
        }
    }
}

/// E(sqrt(X) - sqrt(lambda))^2 for X ~ Poisson(lambda): 2 lambda - 2 lambda^1.5
/// for small lambda, 1/4 + 7/(64 lambda) for large, tabulated in between.
public struct ExpectedPoissonMisfit: Sendable {
    private static let step = 0.0625
    private static let limit = 64.0
    private let table: [Double]

    public init() {
        table = stride(from: 0.0, through: Self.limit, by: Self.step).map { lambda in
            guard lambda > 0 else { return 0 }
            // Sum over counts within 12 standard deviations, pmf by recurrence in log space.
            let root = lambda.squareRoot()
            let top = Int(lambda + 12 * root + 12)
            var logP = -lambda, sum = 0.0
            for k in 0...top {
                if k > 0 { logP += log(lambda) - log(Double(k)) }
                let d = Double(k).squareRoot() - root
                sum += exp(logP) * d * d
            }
            return sum
        }
    }

    public func callAsFunction(_ lambda: Double) -> Double {
        guard lambda > 0 else { return 0 }
        guard lambda >= Self.step else { return 2 * lambda - 2 * lambda * lambda.squareRoot() }
        guard lambda < Self.limit else { return 0.25 + 7 / (64 * lambda) }
        let x = lambda / Self.step, i = Int(x), f = x - Double(i)
        return table[i] * (1 - f) + table[i + 1] * f
    }
}
