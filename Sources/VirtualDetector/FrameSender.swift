import CXI
import Foundation
import Ingest
import Recon
import SwiftZMQ

/// A virtual fast CCD: sends a raw CXI scan as COSMIC-style ZeroMQ
/// messages (`start`, dark `frame`s, data `frame`s, `stop`) at a given
/// rate, with faults injected on request so that receivers can be tested.
public final class FrameSender {
    public struct Faults: Sendable {
        /// Probabilities per frame message.
        public var drop = 0.0
        public var duplicate = 0.0
        public var reorder = 0.0
        public var corrupt = 0.0
        /// Pause this long once, halfway through the data frames.
        public var stall = 0.0
        /// End (no `stop`) after this many frame messages.
        public var dieAfter: Int?
        public var seed: UInt64 = 1
        public init() {}
    }

    /// What was sent, for the caller's log and for tests.
    public struct Report: Sendable, Equatable {
        public var sent = 0
        public var dropped = 0
        public var duplicated = 0
        public var reordered = 0
        public var corrupted = 0
        public var stopped = false
    }

    let reader: CXIReader
    let socket: ZMQSocket
    let rate: Double?
    let faults: Faults
    /// Leave the translations out of `start`: every frame carries its own position.
    public var positionsInFrames = false
    /// Every frame's wire bytes, read before the first is sent (`preload`).
    private var payloads: [[UInt8]]?

    /// `rate`: frames per second, nil for as fast as the receiver takes them.
    public init(reader: CXIReader, socket: ZMQSocket, rate: Double?, faults: Faults) {
        self.reader = reader
        self.socket = socket
        self.rate = rate
        self.faults = faults
    }

    /// Reads and encodes every frame now, so that sending is limited by the
    /// receiver, not by the file (a real detector has its frames in memory).
    public func preload() throws {
        let s = reader.scan
        payloads = try (0..<(s.darkFrames + s.frames)).map { try payload($0) }
    }

    /// Little-endian on the wire, as the header says; raw values clamped to 16 bits.
    private func payload(_ identifier: Int) throws -> [UInt8] {
        let s = reader.scan
        if let payloads { return payloads[identifier] }
        let dark = identifier < s.darkFrames
        let index = dark ? identifier : identifier - s.darkFrames
        let pixels = dark ? try reader.readDarks(first: index, count: 1) : try reader.readFrames(first: index, count: 1)
        if s.readout != nil {
            return pixels.map { UInt16(clamping: Int($0.rounded())).littleEndian }.withUnsafeBytes { Array($0) }
        }
        return pixels.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Array($0) }
    }

    public func send(scanID: String) throws -> Report {
        let s = reader.scan
        let raw = s.readout != nil
        let start = ScanStart(scanID: scanID, frames: s.frames, darks: s.darkFrames, shapeY: s.frameHeight,
                              shapeX: s.readout?.rawColumns ?? s.frameWidth, dtype: raw ? "uint16" : "float32",
                              energy: s.energy, distance: s.distance, xPixelSize: s.xPixelSize, yPixelSize: s.yPixelSize,
                              translations: positionsInFrames ? nil : s.positions.map { [$0.y, $0.x] }, readout: s.readout,
                              gain: s.gain, optics: s.optics)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        try socket.send(bytes: [Array("start".utf8), Array(try encoder.encode(start)), []])

        var rng = SeededRandom(seed: faults.seed)
        var report = Report()
        var held: [[UInt8]]?
        let began = Date()
        let total = s.darkFrames + s.frames
        for identifier in 0..<total {
            if let limit = faults.dieAfter, report.sent >= limit { return report }
            if faults.stall > 0, identifier == s.darkFrames + s.frames / 2 { Thread.sleep(forTimeInterval: faults.stall) }
            if let rate { pace(began, identifier, rate) }
            let dark = identifier < s.darkFrames
            let index = dark ? identifier : identifier - s.darkFrames
            var header = FrameHeader(shapeY: start.shapeY, shapeX: start.shapeX, dtype: start.dtype, identifier: identifier,
                                     index: index, posy: dark ? nil : s.positions[index].y, posx: dark ? nil : s.positions[index].x)
            var payload = try self.payload(identifier)
            if rng.uniform() < faults.drop { report.dropped += 1; continue }
            if rng.uniform() < faults.corrupt {
                report.corrupted += 1
                if rng.uniform() < 0.5 { payload.removeLast(min(payload.count, 7)) } else { header.dtype = "uint12" }
            }
            let message = [Array("frame".utf8), Array(try encoder.encode(header)), payload]
            if rng.uniform() < faults.reorder, held == nil {
                // Sent after the next frame instead.
                held = message
                report.reordered += 1
                continue
            }
            try socket.send(bytes: message)
            report.sent += 1
            if let h = held { try socket.send(bytes: h); report.sent += 1; held = nil }
            if rng.uniform() < faults.duplicate {
                try socket.send(bytes: message)
                report.sent += 1
                report.duplicated += 1
            }
        }
        if let h = held { try socket.send(bytes: h); report.sent += 1 }
        try socket.send(bytes: [Array("stop".utf8), Array(try encoder.encode(ScanStop(scanID: scanID, sent: report.sent))), []])
        report.stopped = true
        return report
    }

    private func pace(_ began: Date, _ n: Int, _ rate: Double) {
        let due = began.addingTimeInterval(Double(n) / rate)
        let wait = due.timeIntervalSinceNow
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
    }
}
