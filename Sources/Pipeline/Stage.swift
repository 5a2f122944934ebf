import Parameters
import Recon

/// What flows between stages: a named kind, so that a connection from an
/// output to an input can be checked before anything runs.
public struct ItemKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// Detector frames as read out (ADU), with their index and position.
    public static let rawFrame = ItemKind(rawValue: "raw-frame")
    /// Frames in photons after preprocessing.
    public static let cleanFrame = ItemKind(rawValue: "clean-frame")
    /// A row of per-frame numbers (a table's line).
    public static let tableRow = ItemKind(rawValue: "table-row")
}

/// A named input or output of a stage.
public struct PortSpec: Sendable, Equatable {
    public var name: String
    public var kind: ItemKind
    public var doc: String
    /// An input that may stay unconnected (the stage then reads a parameter instead).
    public var optional: Bool
    public init(_ name: String, _ kind: ItemKind, optional: Bool = false, doc: String) {
        self.name = name
        self.kind = kind
        self.optional = optional
        self.doc = doc
    }
}

/// Everything a stage declares about itself.
public struct StageDescription: Sendable, Equatable {
    public var type: String
    public var summary: String
    public var inputs: [PortSpec]
    public var outputs: [PortSpec]
    public var parameters: [ParameterSpec]

    public init(type: String, summary: String, inputs: [PortSpec], outputs: [PortSpec], parameters: [ParameterSpec]) {
        self.type = type
        self.summary = summary
        self.inputs = inputs
        self.outputs = outputs
        self.parameters = parameters
    }
}

/// One item on its way between stages: the port it leaves or enters by,
/// its frame index (or -1 for a scan-wide item) and its value.
public struct StageItem: @unchecked Sendable {
    public var port: String
    public var index: Int
    public var payload: Any

    public init(port: String, index: Int, payload: Any) {
        self.port = port
        self.index = index
        self.payload = payload
    }

    /// The index of an end marker.
    public static let endIndex = Int.min

    /// Emitted by a stage, closes one of its outputs before the stage ends:
    /// its consumers' `inputEnded` runs once every rank feeding it closed it.
    public static func end(of port: String) -> StageItem { StageItem(port: port, index: endIndex, payload: ()) }

    /// The payload as `T`, or an error naming the port and both types.
    public func value<T>(as type: T.Type = T.self) throws -> T {
        guard let v = payload as? T else {
            throw PipelineError.wrongPayload(port: port, expected: "\(T.self)", found: "\(Swift.type(of: payload))")
        }
        return v
    }
}

/// Where a stage instance runs.
public struct StageContext {
    /// The instance's name in the pipeline file.
    public var name: String
    /// This rank's place in the stage's group, and the group's size.
    public var groupRank: Int
    public var groupSize: Int
    /// Reductions over the group (the solver's small interface).
    public var group: Collective
    /// Where the stage writes files.
    public var outputDirectory: String
    /// The pipeline's named ZeroMQ endpoints, and the products it keeps.
    public var endpoints: [String: String]
    public var save: [SavedProduct]

    public init(name: String, groupRank: Int, groupSize: Int, group: Collective, outputDirectory: String,
                endpoints: [String: String] = [:], save: [SavedProduct] = [.reconstructed]) {
        self.name = name
        self.groupRank = groupRank
        self.groupSize = groupSize
        self.group = group
        self.outputDirectory = outputDirectory
        self.endpoints = endpoints
        self.save = save
    }
}

/// A pipeline stage. One instance runs on each rank of its group; a new
/// stage is a type conforming to this plus one line in `StageRegistry`.
public protocol Stage: AnyObject, SendableMetatype {
    static var description: StageDescription { get }
    /// Made from parameters already checked against `description`.
    init(parameters: ParameterSet, context: StageContext) throws
    /// One item arriving on one of the inputs; results go to `emit`.
    func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws
    /// Every rank feeding `port` has closed it (or the stage's end): all its
    /// items have been processed. Called in the order the inputs are
    /// declared, at the same step on every rank of the group, so it may use
    /// collectives over the group (merge dark statistics, find a centre).
    func inputEnded(_ port: String, emit: (StageItem) throws -> Void) throws
    /// The scan has ended: emit what needed every item.
    func flush(emit: (StageItem) throws -> Void) throws
    /// The scan was aborted: forget it and be ready for the next.
    func reset()
    /// Problems of parameters that each pass their declared checks but not
    /// together (a crop smaller than the output, an unparsable "y,x"), so
    /// `validate` finds them before anything runs. A problem starting with
    /// "KEY: " is reported at that parameter's (or pipeline key's) path.
    static func problems(_ parameters: ParameterSet, in pipeline: PipelineSpec) -> [String]
}

extension Stage {
    public static func problems(_ parameters: ParameterSet, in pipeline: PipelineSpec) -> [String] { [] }
    public func inputEnded(_ port: String, emit: (StageItem) throws -> Void) throws {}
}

/// A stage with no inputs: it makes the items (reads a file, receives a
/// stream) when the pipeline starts.
public protocol SourceStage: Stage {
    func produce(emit: (StageItem) throws -> Void) throws
}

public enum PipelineError: Error, CustomStringConvertible, Equatable {
    case wrongPayload(port: String, expected: String, found: String)

    public var description: String {
        switch self {
        case .wrongPayload(let port, let expected, let found): "port '\(port)': expected \(expected), got \(found)"
        }
    }
}
