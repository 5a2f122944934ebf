/// How a fast CCD's raw frame is laid out: the image columns are split into
/// `channels` blocks read out in parallel; each block is followed by
/// `overscan` columns that see no light (offset and noise only). A channel
/// reads its block row by row, so the readout sequence index of a pixel is
/// row * (columnsPerChannel + overscan) + column within the block.
public struct ReadoutLayout: Codable, Equatable, Sendable {
    public var rows: Int
    public var columns: Int
    public var channels: Int
    public var overscan: Int

    public init(rows: Int, columns: Int, channels: Int, overscan: Int) {
        self.rows = rows
        self.columns = columns
        self.channels = channels
        self.overscan = overscan
    }

    public var columnsPerChannel: Int { columns / channels }
    public var blockWidth: Int { columnsPerChannel + overscan }
    public var rawColumns: Int { channels * blockWidth }
    public var rawPixels: Int { rows * rawColumns }
    /// Length of one channel's readout sequence (rows times block width).
    public var sequenceLength: Int { rows * blockWidth }

    public func problems() -> [String] {
        var out: [String] = []
        if rows < 1 || columns < 1 { out.append("detector must have at least one row and column, got \(rows)x\(columns)") }
        if channels < 1 || columns % max(1, channels) != 0 {
            out.append("\(columns) columns do not split into \(channels) readout channels")
        }
        if overscan < 0 { out.append("overscan must be at least 0 columns, got \(overscan)") }
        return out
    }

    /// Raw column of image column `x`.
    @inlinable public func rawColumn(ofImageColumn x: Int) -> Int {
        (x / columnsPerChannel) * blockWidth + x % columnsPerChannel
    }

    /// Channel and readout sequence index of the raw pixel (row, rawColumn).
    @inlinable public func readout(row: Int, rawColumn c: Int) -> (channel: Int, sequence: Int) {
        (c / blockWidth, row * blockWidth + c % blockWidth)
    }

    @inlinable public func isOverscan(rawColumn c: Int) -> Bool { c % blockWidth >= columnsPerChannel }
}
