import Foundation
import Recon

/// The one path from a raw scan's darks and first frames to its cleaner,
/// shared by `raw2cxi`, the clean-frames stage and the live session: darks
/// added on each rank as they come, merged over the ranks, the centre given
/// or found from every rank's first frames, then the cleaner. The callers
/// differ only in where the frames come from (a file, a stage port, the
/// wire), so the results do not depend on the route or the rank count.
public final class CleanerSetup {
    public let layout: ReadoutLayout
    public let gain: Double?
    public let fileMask: [UInt32]?
    public let options: PreprocessOptions
    private var darks: DarkStatistics
    /// The merged statistics, or nil where no rank had a dark frame.
    public private(set) var dark: DarkStatistics?
    public private(set) var darksMerged = false
    private var finder: CentreFinder?

    public init(layout: ReadoutLayout, gain: Double?, fileMask: [UInt32]?, options: PreprocessOptions) {
        self.layout = layout
        self.gain = gain
        self.fileMask = fileMask
        self.options = options
        darks = DarkStatistics(pixels: layout.rawPixels, readout: layout)
    }

    public func addDark(_ raw: [Float]) throws {
        guard !darksMerged else { throw PreprocessError.input("a dark frame after the dark statistics were merged") }
        try darks.add(raw)
    }

    /// Collective: every rank merges, with or without darks of its own; the
    /// centre search starts from the merged darks (unless the centre is given).
    public func mergeDarks(over comm: Collective) throws {
        let merged = try darks.merged(over: comm)
        dark = merged.count > 0 ? merged : nil
        darksMerged = true
        if options.centre == nil {
            finder = try CentreFinder(layout: layout, gain: gain, dark: dark, fileMask: fileMask, options: options)
        }
    }

    /// One of the scan's first frames, for the centre search (ignored where the centre is given).
    public func addCentring(raw: [Float]) throws {
        guard darksMerged else { throw PreprocessError.input("a centring frame before the dark statistics were merged") }
        try finder?.add(raw: raw)
    }

    /// Collective: the centre given in the options, or found from every
    /// rank's centring frames; nil when those hold no photons after cleaning.
    public func centre(over comm: Collective) throws -> (y: Double, x: Double)? {
        if let c = options.centre { return (c[0], c[1]) }
        guard let finder else { throw PreprocessError.input("the centre searched before the dark statistics were merged, or twice") }
        try finder.combine { try comm.sum($0) }
        self.finder = nil
        return finder.centre()
    }

    public func cleaner(centre: (y: Double, x: Double), beamstopMap: [Float]? = nil) throws -> FrameCleaner {
        try FrameCleaner(layout: layout, gain: gain, dark: dark, fileMask: fileMask, centre: centre, options: options,
                         beamstopMap: beamstopMap)
    }
}
