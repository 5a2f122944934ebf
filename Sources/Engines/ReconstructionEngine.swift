import Foundation
import Numerics
import Parameters
import Recon

/// An algorithm that iterates on a `PtychoModel`. The model holds what all
/// engines share (frames, object, probe, overlap sums, the iterations so
/// far); the engine holds only its own state (DM's exit waves, ML's
/// search directions), so one engine can take over from another.
///
/// A new engine is one file with a type conforming to this protocol and an
/// `EngineKind`, plus its line in `EngineRegistry.standard`.
public protocol ReconstructionEngine: AnyObject, SendableMetatype {
    /// A new engine on `model`, its own state started from the model's object and probe.
    init(model: PtychoModel, options: EngineOptions) throws
    /// The registry's name of the engine as configured.
    var name: String { get }
    var model: PtychoModel { get }
    var options: EngineOptions { get }
    /// One iteration over the model's measured frames, identical on every rank.
    @discardableResult
    func iterate() throws -> IterationStats
    /// A frame measured while the engine runs (see `PtychoModel.place`).
    func place(_ j: Int, amplitudes values: UnsafeBufferPointer<Float>)
    /// New settings between iterations (a live session's `set`), checked
    /// first; the engine must be of the kind the settings name.
    func adjust(_ options: EngineOptions) throws
    /// The engine's own state: what a checkpoint must keep beyond the object
    /// and the probe so that a resumed run makes the iterations an
    /// uninterrupted one would. Names say what a part is (engines that mean
    /// the same by it share the name, as DM and RAAR their exit waves).
    var state: [EngineStatePart] { get }
    /// Numbers that go with it, the same on every rank.
    var stateNumbers: [String: Double] { get }
    /// Continues from saved state, or starts it afresh from the model's
    /// object and probe when there is none (nil, or a part missing).
    func restore(state saved: EngineState?) throws
}

/// Where a part of an engine's state lives, which says how a checkpoint
/// stores it and how a run on another rank count reads it back.
public enum EngineStateShape: Sendable {
    /// `layers` x frameSize^2 values per frame, in the order of this rank's frames.
    case frames
    /// One value per pixel of this rank's object region, equal on every
    /// rank that holds the pixel (like the object).
    case region
    /// frameSize^2 values, equal on every rank (like a one-mode probe).
    case probe
}

public struct EngineStatePart {
    public let name: String
    public let shape: EngineStateShape
    /// Values per pixel of each frame (`.frames`: one per probe mode for exit waves).
    public let layers: Int
    public let values: UnsafeBufferPointer<Complex<Float>>

    public init(name: String, shape: EngineStateShape, layers: Int = 1, values: UnsafeBufferPointer<Complex<Float>>) {
        self.name = name
        self.shape = shape
        self.layers = layers
        self.values = values
    }

    /// The dimensions after the frame index of a `.frames` part: (y, x), or (layers, y, x).
    public func frameDimensions(size m: Int) -> [Int] { layers == 1 ? [m, m] : [layers, m, m] }
}

/// Saved engine state as read back: each part's values in this rank's
/// layout (its frames, its region), and the numbers.
public struct EngineState {
    public var parts: [String: [Complex<Float>]]
    public var numbers: [String: Double]

    public init(parts: [String: [Complex<Float>]], numbers: [String: Double]) {
        self.parts = parts
        self.numbers = numbers
    }

    /// The part `name` of exactly `count` values.
    public func part(_ name: String, count: Int) throws -> [Complex<Float>] {
        guard let values = parts[name] else { throw SimulationError.invalid("the saved engine state has no '\(name)'") }
        guard values.count == count else {
            throw SimulationError.invalid("saved '\(name)' of \(values.count) values where \(count) are expected")
        }
        return values
    }

    public func number(_ name: String) throws -> Double {
        guard let value = numbers[name] else { throw SimulationError.invalid("the saved engine state has no '\(name)'") }
        return value
    }
}

extension ReconstructionEngine {
    public var iteration: Int { model.iteration }
    public var history: [IterationStats] { model.history }
    public var activeFrames: Int { model.activeFrames }
    public var currentProbe: Array2D<Complex<Float>> { model.currentProbe }
    public var regionObject: Array2D<Complex<Float>> { model.regionObject }
    public func object(in box: Box) -> [Complex<Float>] { model.object(in: box) }
    public func setWeights(_ weights: [Float]) { model.setWeights(weights) }
    public var profiling: Bool {
        get { model.profiling }
        set { model.profiling = newValue }
    }
    public var profile: IterationProfile { model.profile }
    public var probeStepTransforms: (forward: Int, inverse: Int) { model.probeStepTransforms }
}

/// One entry of the engine registry: a name, what it is, the parameters
/// it adds to the shared ones (`EngineOptions.sharedParameters`), and the
/// type that runs it (one type may run several entries, as the projection
/// engine runs DM and RAAR).
public struct EngineKind: Sendable {
    public let name: String
    public let summary: String
    public let parameters: [ParameterSpec]
    public let type: any ReconstructionEngine.Type
    /// Complex values the engine keeps per pixel of each of its frames
    /// (DM's exit waves: 1), for the memory check made before anything is allocated.
    public let frameValues: Int
    /// Whether the engine models several probe modes (`EngineOptions.probeModes`).
    public let modes: Bool

    public init(name: String, summary: String, parameters: [ParameterSpec] = [], type: any ReconstructionEngine.Type,
                frameValues: Int, modes: Bool = false) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
        self.type = type
        self.frameValues = frameValues
        self.modes = modes
    }
}

/// The engines a configuration may name.
public enum EngineRegistry {
    /// Every engine, one line each.
    public static let standard: [EngineKind] = [
        ProjectionEngine.differenceMap,
        ProjectionEngine.raar,
        MaximumLikelihoodEngine.kind,
        RegularizedPIEEngine.kind,
    ]

    public static var names: [String] { standard.map(\.name) }

    public static func kind(named name: String) -> EngineKind? { standard.first { $0.name == name } }

    /// The problem with an engine name, listing the known ones; nil when it is known.
    public static func problem(naming name: String) -> String? {
        kind(named: name) == nil ? "no engine is named '\(name)'; known: \(names.joined(separator: ", "))" : nil
    }

    /// The engine `options.algorithm` names, on `model`.
    public static func make(_ model: PtychoModel, options: EngineOptions) throws -> any ReconstructionEngine {
        guard let kind = kind(named: options.algorithm) else {
            throw SimulationError.invalid(problem(naming: options.algorithm)!)
        }
        return try kind.type.init(model: model, options: options)
    }

    /// The engine `options` name, going on from `engine`: the same engine
    /// with new settings where its type runs that entry, else a new one on
    /// the same model (the object, probe and iterations carry over; the new
    /// engine starts its own state from them).
    public static func continuing(_ engine: any ReconstructionEngine, with options: EngineOptions) throws -> any ReconstructionEngine {
        guard let kind = kind(named: options.algorithm) else { throw SimulationError.invalid(problem(naming: options.algorithm)!) }
        if ObjectIdentifier(type(of: engine)) == ObjectIdentifier(kind.type) {
            try engine.adjust(options)
            return engine
        }
        return try kind.type.init(model: engine.model, options: options)
    }

    /// The model of this rank's frames and the engine `options.algorithm` names on it.
    public static func make(comm: Collective, layout: TileLayout, frames: LocalFrames, mask: [Float],
                            probe: Array2D<Complex<Float>>, options: EngineOptions) throws -> any ReconstructionEngine {
        if let problem = problem(naming: options.algorithm) { throw SimulationError.invalid(problem) }
        return try make(PtychoModel(comm: comm, layout: layout, frames: frames, mask: mask, probe: probe, options: options),
                        options: options)
    }

    /// The most complex values per frame pixel that engines hold at once
    /// while `options` run: an engine of another type is made while the one
    /// it takes over from still exists. Each probe mode has its own.
    public static func peakFrameValues(_ options: EngineOptions) -> Int {
        peakFrameValues(options.sequence.map(\.name)) * options.probeModes
    }

    /// The same for engines that run one after another in the order given.
    public static func peakFrameValues(_ names: [String]) -> Int {
        let kinds = names.compactMap { kind(named: $0) }
        var peak = kinds.map(\.frameValues).max() ?? 1
        for (a, b) in zip(kinds, kinds.dropFirst()) where ObjectIdentifier(a.type) != ObjectIdentifier(b.type) {
            peak = max(peak, a.frameValues + b.frameValues)
        }
        return peak
    }

    /// Every engine's own parameters, each name once (engines may share one, e.g. a relaxation).
    public static var engineParameters: [ParameterSpec] {
        var seen = Set<String>(), out: [ParameterSpec] = []
        for spec in standard.flatMap(\.parameters) where seen.insert(spec.name).inserted { out.append(spec) }
        return out
    }
}
