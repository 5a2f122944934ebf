import CXI
import Foundation
import Numerics
import Recon
import Simulator
import Streaming
import SwiftHDF5
import SwiftMPI
import SwiftZMQ
import VirtualDetector

/// A whole live session on the ranks given: a simulated scan sent by the
/// virtual detector (a thread of rank 0, over loopback TCP) at a rate,
/// received, cleaned, solved and written. It reports whether the pipeline
/// kept up (the sender is never made to wait when it does), the sustained
/// rate, the time from the last frame to the written file, per-frame
/// latency, and the object's error against the simulated truth.
public enum StreamBenchmark {
    public struct Row: Codable, Sendable {
        public var ranks: Int
        public var frames: Int
        public var rawShape: [Int]
        public var cleanSize: Int
        /// Frames per second asked of the sender (nil: as fast as the receiver takes them).
        public var rate: Double?
        /// Seconds the sender took, and what the rate allows.
        public var sendSeconds: Double
        public var nominalSeconds: Double?
        /// Seconds from the first frame's arrival until the cleaner was ready
        /// (darks merged, centre found from the first frames, FFT plans made).
        public var startupSeconds: Double
        /// Frames placed per second once the cleaner was ready, until the last placement.
        public var sustainedFramesPerSecond: Double
        public var placed: Int
        public var rejected: Int
        public var secondsFromLastFrameToFile: Double
        public var latencyMedianSeconds: Double
        public var latency99Seconds: Double
        public var iterations: Int
        public var finalIterations: Int
        public var fourierError: Double
        /// NRMSE against the truth (shift, ramp and factor removed), when the grids match.
        public var nrmse: Double?
        public var keptUp: Bool
    }

    public static func run(_ comm: Communicator, config: SimulationConfig, rate: Double?, options base: StreamOptions,
                           directory: String = NSTemporaryDirectory()) throws -> Row {
        let tag = try comm.broadcast(comm.rank == 0 ? UUID().uuidString.prefix(8).description : "", root: 0)
        let input = (directory as NSString).appendingPathComponent("ns-bench-stream-\(tag).cxi")
        let outputs = (directory as NSString).appendingPathComponent("ns-bench-stream-\(tag)")
        defer {
            if comm.rank == 0 {
                try? FileManager.default.removeItem(atPath: input)
                try? FileManager.default.removeItem(atPath: outputs)
            }
        }
        let simulation = try Simulation(config)
        _ = try SimulatedScanWriter.write(simulation, to: input, comm: comm, options: .init()) { _, _ in }

        // The detector: rank 0's second thread, its own socket.
        var endpoint = ""
        var sender: Thread?
        let done = DispatchSemaphore(value: 0)
        let sendTime = LockedValue(0.0)
        let context = try ZMQContext()
        var socket: ZMQSocket?
        if comm.rank == 0 {
            let s = try ZMQSocket(context, .push)
            endpoint = try s.bind("tcp://127.0.0.1:*")
            socket = s
        }
        endpoint = try comm.broadcast(endpoint, root: 0)
        let reader = try CXIReader(path: input)
        if let socket {
            // HDF5 is not thread-safe: the sender reads the file only before its
            // `stop`, and the session touches HDF5 only after it.
            nonisolated(unsafe) let frameSender = FrameSender(reader: try CXIReader(path: input), socket: socket, rate: rate,
                                                              faults: .init())
            try frameSender.preload()
            let t = Thread {
                let began = Date()
                _ = try? frameSender.send(scanID: "bench")
                sendTime.set(Date().timeIntervalSince(began))
                done.signal()
            }
            sender = t
            t.start()
        }
        var options = base
        options.connect = endpoint
        options.outputDirectory = outputs
        options.scans = 1
        let session = try StreamSession(comm: comm, options: options) { _ in }
        try session.run()
        if sender != nil { done.wait() }
        socket?.close()

        let r = try require1(session.reports.first, "the session wrote no scan")
        var nrmse: Double? = nil
        var cleanSize = 0
        if comm.rank == 0, let path = r.path {
            let file = try HDF5File(path: path, mode: .readOnly)
            let shape = try file.openDataset(CXIPaths.image).shape
            let object = Array2D(height: shape[0], width: shape[1], values: try file.read(CXIPaths.image, as: Complex<Float>.self))
            cleanSize = try file.openDataset(CXIPaths.illumination).shape[0]
            try file.close()
            let truth = try reader.truthObject()
            if truth.height == object.height, truth.width == object.width {
                let grid = ObjectGrid(positions: reader.scan.positions,
                                      pixelSize: Geometry(energy: reader.scan.energy, distance: reader.scan.distance,
                                                          detectorPixelSize: reader.scan.xPixelSize,
                                                          frameSize: reader.scan.frameHeight).samplePixelSize,
                                      frameSize: reader.scan.frameHeight)
                let region = ObjectMetrics.illuminated(probe: try reader.truthProbe(), corners: grid.corners,
                                                       height: object.height, width: object.width)
                nrmse = try ObjectMetrics.compare(object, truth: truth, region: region).nrmse
            }
        }
        let total = reader.scan.frames + reader.scan.darkFrames
        let nominal = rate.map { Double(total) / $0 }
        let sent = sendTime.get()
        return Row(ranks: comm.size, frames: reader.scan.frames, rawShape: [reader.scan.frameHeight, reader.scan.readout?.rawColumns ?? reader.scan.frameWidth],
                   cleanSize: cleanSize, rate: rate, sendSeconds: sent, nominalSeconds: nominal,
                   startupSeconds: r.prepared - r.firstArrival,
                   sustainedFramesPerSecond: Double(r.placed) / max(1e-9, r.lastPlaced - r.prepared), placed: r.placed,
                   rejected: r.rejected, secondsFromLastFrameToFile: r.secondsAfterLastFrame, latencyMedianSeconds: r.latencyMedian,
                   latency99Seconds: r.latency99, iterations: r.iterations, finalIterations: options.finalIterations,
                   fourierError: r.fourierError, nrmse: nrmse,
                   // The sender waits only when the receiver falls behind: on time means kept up.
                   keptUp: nominal.map { sent <= $0 * 1.02 + 0.5 } ?? true)
    }
}

private func require1<T>(_ value: T?, _ message: String) throws -> T {
    guard let value else { throw StreamError(message) }
    return value
}

final class LockedValue<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}
