import ArgumentParser
import CXI
import Foundation
import Recon
import RemoteAccess
import Simulator
import SwiftZMQ
import VirtualDetector

struct FCCDSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fccd-sim",
        abstract: "A virtual fast CCD: sends a raw CXI scan (or a simulated one) over ZeroMQ as start, dark and data frames, and stop, at a given rate, with faults injected on request.")

    @Option(help: "The raw CXI scan to send (default: simulate a raw scan with 16 dark frames).")
    var input: String?
    @Option(help: "Scan to simulate when there is no --input (RxC, spiral:N, rounds:N).")
    var scan = "20x20"
    @Option(help: "Endpoint to bind (a receiver connects to it).")
    var bind = "tcp://127.0.0.1:5555"
    @Option(help: "Frames per second, or 'max'.")
    var rate = "10"
    @Option(help: "Scan identifier sent in start and stop.")
    var scanID = "scan-1"
    @Option(help: "Probability of dropping a frame.")
    var drop = 0.0
    @Option(help: "Probability of sending a frame twice.")
    var duplicate = 0.0
    @Option(help: "Probability of sending a frame after the next one.")
    var reorder = 0.0
    @Option(help: "Probability of corrupting a frame (truncated payload or a bad dtype).")
    var corrupt = 0.0
    @Option(help: "Pause this many seconds once, halfway through the data frames.")
    var stall = 0.0
    @Option(help: "Stop without 'stop' after this many frame messages.")
    var dieAfter: Int?
    @Flag(help: "Send no translations in 'start': each frame carries its position (posy, posx) only.")
    var positionsInFrames = false
    @Flag(help: "Read and encode every frame before sending the first, so that the file does not limit the rate.")
    var preload = false
    @Option(help: "Seed of the fault injection.")
    var seed: UInt64 = 1
    @Option(help: "Seconds to keep the socket open after the last message, so a slow receiver gets everything.")
    var linger = 5.0
    @Option(help: "This detector's key pair, a NAME.key_secret file (`ns-mpirun keys generate`): with --curve-clients, --bind speaks CURVE only.")
    var curveSecret: String?
    @Option(help: "A folder of the public keys (NAME.key) of the receivers let in, the session's among them.")
    var curveClients: String?

    var parsedRate: Double? { rate == "max" ? nil : Double(rate) }

    func validate() throws {
        guard rate == "max" || (parsedRate.map { $0 > 0 && $0.isFinite } ?? false) else {
            throw ValidationError("--rate must be a positive number of frames per second or 'max', got '\(rate)'")
        }
        for (name, p) in [("--drop", drop), ("--duplicate", duplicate), ("--reorder", reorder), ("--corrupt", corrupt)] where !(0...1).contains(p) {
            throw ValidationError("\(name) must be a probability in 0...1, got \(p)")
        }
        guard stall >= 0, linger >= 0 else { throw ValidationError("--stall and --linger must be at least 0") }
        if let dieAfter, dieAfter < 0 { throw ValidationError("--die-after must be at least 0, got \(dieAfter)") }
        guard bind.hasPrefix("tcp://") || bind.hasPrefix("ipc://") || bind.hasPrefix("inproc://") else {
            throw ValidationError("--bind must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got '\(bind)'")
        }
        guard (curveSecret == nil) == (curveClients == nil) else {
            throw ValidationError("--curve-secret and --curve-clients go together: the detector's key pair, and the receivers it lets in")
        }
        guard curveSecret != nil || EndpointPolicy.isLocal(bind) else {
            throw ValidationError(EndpointPolicy.plaintextRefusal("--bind", bind, needs: "--curve-secret FILE and --curve-clients DIR"))
        }
    }

    func run() throws {
        var faults = FrameSender.Faults()
        faults.drop = drop
        faults.duplicate = duplicate
        faults.reorder = reorder
        faults.corrupt = corrupt
        faults.stall = stall
        faults.dieAfter = dieAfter
        faults.seed = seed
        try withMPI { world in
            guard world.size == 1 else { throw ValidationError("fccd-sim is one detector: run it without mpirun, or on 1 rank") }
            var path = input
            var temporary: String?
            if path == nil {
                var config = SimulationConfig.standard
                config.scan.pattern = try ScanPattern(parsing: scan)
                config.detector = DetectorModel()
                config.darkFrames = 16
                let file = NSTemporaryDirectory() + "ns-fccd-sim-\(UUID().uuidString.prefix(8)).cxi"
                _ = try SimulatedScanWriter.write(try Simulation(config), to: file, comm: world, options: .init()) { _, _ in }
                path = file
                temporary = file
            }
            defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
            let reader: CXIReader
            do { reader = try CXIReader(path: path!) } catch { throw ValidationError("--input: \(error)") }
            let context = try ZMQContext()
            var curve: CurveServer?
            if let curveSecret, let curveClients {
                do {
                    curve = try CurveServer(context: context, secretFile: curveSecret, clientsDirectory: curveClients) { line in
                        FileHandle.standardError.write(Data("fccd-sim: \(line)\n".utf8))
                    }
                } catch { throw ValidationError("\(error)") }
            }
            defer { curve?.stop() }
            let socket = try ZMQSocket(context, .push)
            try curve?.secure(socket)
            let endpoint = try socket.bind(bind)
            print("fccd-sim: sending \(reader.scan.darkFrames) dark and \(reader.scan.frames) data frames from \(path!) on \(endpoint)\(curve.map { " (CURVE, \($0.authenticator.clients.count) keys let in)" } ?? "") at \(parsedRate.map { "\($0) Hz" } ?? "full speed")")
            fflush(nil)
            let sender = FrameSender(reader: reader, socket: socket, rate: parsedRate, faults: faults)
            sender.positionsInFrames = positionsInFrames
            if preload { try sender.preload() }
            let report = try sender.send(scanID: scanID)
            print("fccd-sim: sent \(report.sent) frame messages (dropped \(report.dropped), duplicated \(report.duplicated), reordered \(report.reordered), corrupted \(report.corrupted))\(report.stopped ? ", then stop" : "; died before stop")")
            fflush(nil)
            try socket.setLinger(milliseconds: Int(linger * 1000))
            socket.close()
        }
    }
}
