import CXI
import Parameters
import Pipeline

/// Clean frames read from a CXI scan, dealt over the stage's ranks (rank g
/// of k reads frames g, g+k, ...), each with its index in the scan.
public final class CXIFramesStage: SourceStage {
    public static let description = StageDescription(
        type: "cxi-frames",
        summary: "Clean diffraction frames from a CXI scan file (raw scans go through raw2cxi first).",
        inputs: [],
        outputs: [PortSpec("frames", .cleanFrame, doc: "each frame's photons ([Float], row-major), indexed by scan position")],
        parameters: [
            ParameterSpec("path", .string, default: nil, doc: "the CXI file"),
            ParameterSpec("first", .integer(0...Int.max), default: .integer(0), doc: "first frame"),
            ParameterSpec("count", .integer(0...Int.max), default: .integer(0), doc: "frames to read (0: to the end)"),
        ])

    let reader: CXIReader
    let range: Range<Int>
    let context: StageContext

    public init(parameters: ParameterSet, context: StageContext) throws {
        let path = parameters.string("path")
        reader = try CXIReader(path: path)
        guard reader.scan.readout == nil else {
            throw StageError(stage: context.name, problem: "\(path) holds raw detector frames; clean them with raw2cxi first")
        }
        let first = parameters.integer("first"), count = parameters.integer("count")
        let end = count == 0 ? reader.frameCount : first + count
        guard first < reader.frameCount, end <= reader.frameCount else {
            throw StageError(stage: context.name, problem: "frames \(first)..<\(end) lie outside the \(reader.frameCount) frames of \(path)")
        }
        range = first..<end
        self.context = context
    }

    public func produce(emit: (StageItem) throws -> Void) throws {
        for index in stride(from: range.lowerBound + context.groupRank, to: range.upperBound, by: context.groupSize) {
            try emit(StageItem(port: "frames", index: index, payload: try reader.readFrames(first: index, count: 1)))
        }
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {}
    public func flush(emit: (StageItem) throws -> Void) throws {}
    public func reset() {}
}
