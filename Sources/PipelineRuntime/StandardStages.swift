import Pipeline

extension StageRegistry {
    /// Every stage this program has. A new stage is a type conforming to
    /// `Stage` (or `SourceStage`) plus one line here.
    public static let standard = StageRegistry.core.adding([
        CXIFramesStage.self,
        RawToCXIStage.self,
        ReconStage.self,
        StreamStage.self,
        RawFramesStage.self,
        CleanFramesStage.self,
    ])
}
