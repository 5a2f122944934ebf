/// The stage types a pipeline file may name.
public struct StageRegistry: Sendable {
    public let types: [any Stage.Type]

    public init(_ types: [any Stage.Type]) { self.types = types }

    /// The stages that need neither MPI nor files (the full list, with a
    /// new stage as one line, is `StageRegistry.standard` in PipelineRuntime).
    public static let core = StageRegistry([
        FrameStatisticsStage.self,
    ])

    public var names: [String] { types.map { $0.description.type } }

    public func type(named name: String) -> (any Stage.Type)? { types.first { $0.description.type == name } }

    /// A registry with more types (tests, plug-ins).
    public func adding(_ more: [any Stage.Type]) -> StageRegistry { StageRegistry(types + more) }
}
