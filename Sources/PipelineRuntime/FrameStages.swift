import CXI
import Foundation
import Ingest
import Parameters
import Pipeline
import Preprocessing
import Recon

extension ItemKind {
    /// The path of a raw fast-CCD scan (its geometry, readout layout and mask).
    public static let rawScan = ItemKind(rawValue: "raw-scan")
}

/// A raw fast-CCD scan read frame by frame on the stage's ranks (rank g of
/// k reads darks and frames g, g+k, ...): its path first, then the dark
/// frames, then the first frames again for the centre search, then every
/// frame; each group closes before the next begins, so the stages it feeds
/// can merge darks and find the centre between them.
public final class RawFramesStage: SourceStage {
    public static let description = StageDescription(
        type: "raw-frames",
        summary: "Raw fast-CCD frames read from a raw CXI scan: darks, then the first frames for the centre, then every frame.",
        inputs: [],
        outputs: [
            PortSpec("scan", .rawScan, doc: "the raw scan's path, before any frame"),
            PortSpec("darks", .rawFrame, doc: "dark frames (ADU as [Float]), indexed from 0; closed before any data frame"),
            PortSpec("centring", .rawFrame, doc: "the scan's first frames, for the centre search; closed before 'frames'"),
            PortSpec("frames", .rawFrame, doc: "every frame (ADU as [Float]), indexed by scan position"),
        ],
        parameters: [
            ParameterSpec("input", .string, default: nil, doc: "the raw CXI scan (relative: to the working directory)"),
            ParameterSpec("centring_frames", .integer(0...1024), default: .integer(8), doc: "first frames sent for the centre search"),
        ])

    let input: String
    let centring: Int
    let context: StageContext

    public init(parameters p: ParameterSet, context: StageContext) throws {
        input = p.string("input")
        centring = p.integer("centring_frames")
        self.context = context
    }

    public func produce(emit: (StageItem) throws -> Void) throws {
        let reader = try CXIReader(path: input)
        let scan = reader.scan
        guard scan.readout != nil else {
            throw StageError(stage: context.name, problem: "\(input): no \(CXIPaths.readout) group: the frames are not raw fast-CCD frames")
        }
        let (g, k) = (context.groupRank, context.groupSize)
        if g == 0 { try emit(StageItem(port: "scan", index: -1, payload: input)) }
        for j in stride(from: g, to: scan.darkFrames, by: k) {
            try emit(StageItem(port: "darks", index: j, payload: try reader.readDarks(first: j, count: 1)))
        }
        try emit(.end(of: "darks"))
        for j in stride(from: g, to: min(centring, scan.frames), by: k) {
            try emit(StageItem(port: "centring", index: j, payload: try reader.readFrames(first: j, count: 1)))
        }
        try emit(.end(of: "centring"))
        for j in stride(from: g, to: scan.frames, by: k) {
            try emit(StageItem(port: "frames", index: j, payload: try reader.readFrames(first: j, count: 1)))
        }
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {}
    public func flush(emit: (StageItem) throws -> Void) throws {}
    public func reset() {}
}

/// The cleaning of raw frames as a stage, frame by frame on its ranks: dark
/// statistics merged over the group when the darks end, the centre from the
/// centring frames when those end (or given), then each frame cleaned by
/// the rank it reaches, written into one CXI file (opened and closed by the
/// group together, each frame written by its rank alone) and passed on. At
/// the end, the STXM and DPC images and the probe estimate, as `raw2cxi`
/// writes them.
public final class CleanFramesStage: Stage {
    public static let description = StageDescription(
        type: "clean-frames",
        summary: "Cleans raw fast-CCD frames one by one on the stage's ranks (raw2cxi's steps) and writes the clean scan.",
        inputs: [
            PortSpec("scan", .rawScan, doc: "the raw scan's path (geometry, readout layout, mask)"),
            PortSpec("darks", .rawFrame, optional: true, doc: "dark frames (unconnected: no dark subtraction)"),
            PortSpec("centring", .rawFrame, optional: true, doc: "the first frames, for the centre (unconnected: give 'centre')"),
            PortSpec("frames", .rawFrame, doc: "the frames to clean, indexed by scan position"),
        ],
        outputs: [
            PortSpec("frames", .cleanFrame, doc: "each clean frame's photons ([Float], row-major), indexed by scan position"),
            PortSpec("scan", .cxiScan, doc: "the clean scan's path, once written"),
        ],
        parameters: [
            ParameterSpec("output", .string, default: .string("clean.cxi"), doc: "the clean scan (relative: under the output directory)"),
        ] + PreprocessParameters.specs + RawToCXIJob.Options.jobSpecs)

    public static func problems(_ p: ParameterSet, in pipeline: PipelineSpec) -> [String] {
        do { _ = try RawToCXIJob.Options(parameters: p); return [] } catch { return error.problems }
    }

    let context: StageContext
    let output: String
    var options: RawToCXIJob.Options
    // The scan, as it becomes known.
    private var reader: CXIReader?
    private var setup: CleanerSetup?
    private var centre: (y: Double, x: Double)?
    private var cleaner: FrameCleaner?
    private var writer: CXIWriter?
    private var totals: CleanScanTotals?
    /// Frames that reached this rank before what cleans them was ready.
    private var waitingCentring: [[Float]] = []
    private var waitingDarks: [[Float]] = []

    private var waitingFrames: [(index: Int, raw: [Float])] = []

    public init(parameters p: ParameterSet, context: StageContext) throws {
        self.context = context
        output = context.resolve(p.string("output"))
        do {
            options = try RawToCXIJob.Options(parameters: p)
        } catch {
            throw StageError(stage: context.name, problem: error.description)
        }
        options.command = "pipeline stage \(context.name) (clean-frames)"
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {
        switch item.port {
        case "scan":
            let path = try item.value(as: String.self)
            let r = try CXIReader(path: path)
            guard let l = r.scan.readout else {
                throw StageError(stage: context.name, problem: "\(path): the frames are not raw fast-CCD frames")
            }
            reader = r
            let setup = CleanerSetup(layout: l, gain: r.scan.gain, fileMask: try RawToCXIJob.imageMask(r.scan.mask, layout: l, file: path),
                                     options: options.preprocess)
            self.setup = setup
            for values in waitingDarks { try setup.addDark(values) }
            waitingDarks = []
        case "darks":
            let values = try item.value(as: [Float].self)
            // The readout layout comes with the scan: every rank's statistics need it alike.
            if let setup { try setup.addDark(values) } else { waitingDarks.append(values) }
        case "centring":
            let values = try item.value(as: [Float].self)
            if let setup, setup.darksMerged { try setup.addCentring(raw: values) } else { waitingCentring.append(values) }
        default:
            let values = try item.value(as: [Float].self)
            if cleaner != nil { try clean(values, index: item.index, emit: emit) } else { waitingFrames.append((item.index, values)) }
        }
    }

    public func inputEnded(_ port: String, emit: (StageItem) throws -> Void) throws {
        switch port {
        case "scan":
            guard reader != nil else { throw StageError(stage: context.name, problem: "no raw scan arrived on 'scan'") }
        case "darks":
            // Collective: every rank of the group merges, with or without darks of its own.
            let setup = setup!
            try setup.mergeDarks(over: context.group)
            if setup.dark == nil { warn("no dark frames: dark subtraction and the dark-frame mask skipped") }
            for values in waitingCentring { try setup.addCentring(raw: values) }
            waitingCentring = []
        case "centring":
            guard let setup, setup.darksMerged else {
                throw StageError(stage: context.name, problem: "the centring frames ended before the darks")
            }
            guard let found = try setup.centre(over: context.group) else {
                throw StageError(stage: context.name, problem: "the centring frames hold no photons after cleaning (all dark?): set 'centre'")
            }
            centre = found
            let reader = reader!
            let cleaner = try setup.cleaner(centre: found, beamstopMap: try RawToCXIJob.beamstopMap(options.beamstopMap, layout: setup.layout))
            self.cleaner = cleaner
            writer = try RawToCXIJob.openCleanScan(output, like: reader.scan, cleaner: cleaner, comm: try context.communicator(),
                                                   options: options)
            totals = CleanScanTotals(frames: reader.scan.frames, pixels: cleaner.outputSize * cleaner.outputSize)
            for (index, values) in waitingFrames { try clean(values, index: index, emit: emit) }
            waitingFrames = []
        default:
            break
        }
    }

    private func clean(_ raw: [Float], index: Int, emit: (StageItem) throws -> Void) throws {
        let frame = try cleaner!.clean(raw: raw)
        try writer!.writeFrame(frame.photons, index: index)
        totals!.add(frame, index: index)
        try emit(StageItem(port: "frames", index: index, payload: frame.photons))
    }

    public func flush(emit: (StageItem) throws -> Void) throws {
        guard let writer, let cleaner, let centre, let reader else {
            throw StageError(stage: context.name, problem: "the scan ended before its centring frames did")
        }
        let (_, warnings) = try totals!.finish(writer: writer, reader: reader, cleaner: cleaner, centre: centre,
                                               firstProbe: options.firstProbe, probeDefocus: options.probeDefocus, over: context.group)
        for w in warnings { warn(w) }
        if context.groupRank == 0 { try emit(StageItem(port: "scan", index: -1, payload: output)) }
        reset()
    }

    private func warn(_ text: String) {
        if context.groupRank == 0 { FileHandle.standardError.write(Data("stage '\(context.name)': warning: \(text)\n".utf8)) }
    }

    public func reset() {
        (reader, setup, centre, cleaner, writer, totals) = (nil, nil, nil, nil, nil, nil)
        waitingCentring = []
        waitingDarks = []
        waitingFrames = []
    }
}
