import Foundation
import Parameters
import SafeOutput

/// The example stage (docs/pipeline.md walks through it): per clean frame,
/// the photons and the pixels at or above a threshold, as a table row; at
/// scan end, the scan's totals over the stage's ranks in a CSV file.
public final class FrameStatisticsStage: Stage {
    public static let description = StageDescription(
        type: "frame-statistics",
        summary: "Photons and bright pixels per clean frame; the scan's totals in NAME.csv at scan end.",
        inputs: [PortSpec("frames", .cleanFrame, doc: "clean frames, photons per pixel ([Float])")],
        outputs: [PortSpec("rows", .tableRow, doc: "[index, photons, pixels >= threshold, brightest pixel] per frame ([Double])")],
        parameters: [
            ParameterSpec("threshold", .number(0...1e12), unit: "photons", default: .number(1),
                          doc: "a pixel counts as bright at or above this many photons"),
            ParameterSpec("file", .boolean, default: .boolean(true), doc: "write the totals to NAME.csv in the output directory"),
        ])

    let threshold: Float
    let writesFile: Bool
    let context: StageContext
    var frames = 0.0, photons = 0.0, bright = 0.0

    public init(parameters: ParameterSet, context: StageContext) throws {
        threshold = Float(parameters.number("threshold"))
        writesFile = parameters.boolean("file")
        self.context = context
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {
        let values: [Float] = try item.value()
        var total: Double = 0, count = 0, brightest: Float = 0
        for v in values {
            total += Double(v)
            if v >= threshold { count += 1 }
            brightest = max(brightest, v)
        }
        frames += 1
        photons += total
        bright += Double(count)
        try emit(StageItem(port: "rows", index: item.index, payload: [Double(item.index), total, Double(count), Double(brightest)]))
    }

    public func flush(emit: (StageItem) throws -> Void) throws {
        var totals = [frames, photons, bright]
        try totals.withUnsafeMutableBufferPointer { try context.group.sum($0) }
        if writesFile && context.groupRank == 0 {
            let path = (context.outputDirectory as NSString).appendingPathComponent("\(context.name).csv")
            let text = "frames,photons,bright_pixels,ranks\n\(Int(totals[0])),\(totals[1]),\(Int(totals[2])),\(context.groupSize)\n"
            do { try PendingFile.write(Data(text.utf8), to: path) } catch {
                throw StageError(stage: context.name, problem: "\(error)")
            }
        }
        reset()
    }

    public func reset() { (frames, photons, bright) = (0, 0, 0) }
}

/// A stage's failure at run time, naming the stage.
public struct StageError: Error, CustomStringConvertible {
    public var stage: String
    public var problem: String
    public init(stage: String, problem: String) {
        self.stage = stage
        self.problem = problem
    }
    public var description: String { "stage '\(stage)': \(problem)" }
}
