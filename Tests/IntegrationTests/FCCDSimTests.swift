import CXI
import Foundation
import Ingest
import SwiftZMQ
import Testing

/// The virtual fast CCD, received by a plain ZeroMQ PULL socket: every frame
/// arrives exactly as stored, in order, between start and stop; injected
/// faults happen as reported and are visible to a receiver.
@Suite(.serialized) struct FCCDSimTests {
    struct Message {
        var topic: String
        var header: [UInt8]
        var payload: [UInt8]
    }

    struct Session {
        var messages: [Message]
        var output: String
        var status: Int32
    }

    /// Runs fccd-sim on the test's raw scan and receives until `stop` or a quiet second.
    func receive(_ extra: [String]) throws -> Session {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: MPIRunner.executable)
        process.arguments = ["fccd-sim", "--input", RawToCXITests.rawScan, "--bind", "tcp://127.0.0.1:*", "--rate", "max",
                             "--linger", "2"] + extra
        process.environment = MPIRunner.environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = LockedData()
        pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        try process.run()
        defer { if process.isRunning { ChildProcesses.stop(process) } }
        let deadline = Date().addingTimeInterval(30)
        var endpoint: String?
        while endpoint == nil && Date() < deadline && process.isRunning {
            if let r = output.string.range(of: #"tcp://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) { endpoint = String(output.string[r]) }
            usleep(20_000)
        }
        let address = try #require(endpoint, "fccd-sim printed no endpoint: \(output.string)")
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .pull)
        try socket.connect(address)
        var messages: [Message] = []
        while let parts = try socket.receive(timeoutMilliseconds: 1000) {
            messages.append(Message(topic: parts[0].string, header: parts.count > 1 ? parts[1].bytes : [],
                                    payload: parts.count > 2 ? parts[2].bytes : []))
            if messages.last?.topic == "stop" { break }
        }
        socket.close()
        ChildProcesses.await(process, timeout: 60, what: "fccd-sim")
        ChildProcesses.drain(pipe, into: output)
        return Session(messages: messages, output: output.string, status: ChildProcesses.status(process))
    }

    @Test func everyFrameArrivesAsStoredBetweenStartAndStop() throws {
        let s = try receive([])
        #expect(s.status == 0, "\(s.output)")
        let reader = try CXIReader(path: RawToCXITests.rawScan)
        let scan = reader.scan
        try #require(s.messages.first?.topic == "start" && s.messages.last?.topic == "stop", "\(s.messages.map(\.topic))")
        let start = try JSONDecoder().decode(ScanStart.self, from: Data(s.messages[0].header))
        #expect(start.darks == scan.darkFrames && start.frames == scan.frames && start.dtype == "uint16")
        #expect(start.readout == scan.readout && start.energy == scan.energy && start.translations?.count == scan.frames)
        let frames = s.messages.dropFirst().dropLast()
        #expect(frames.count == scan.darkFrames + scan.frames)
        for (n, m) in frames.enumerated() {
            #expect(m.topic == "frame")
            let h = try FrameHeader.decode(m.header)
            #expect(h.identifier == n)
            let dark = n < scan.darkFrames
            #expect(h.index == (dark ? n : n - scan.darkFrames))
            let pixels = try m.payload.withUnsafeBytes { try h.pixels(from: $0) }
            let stored = dark ? try reader.readDarks(first: h.index, count: 1) : try reader.readFrames(first: h.index, count: 1)
            #expect(pixels == stored, "frame \(n)")
            if !dark { #expect(h.posy == scan.positions[h.index].y && h.posx == scan.positions[h.index].x) }
        }
        let stop = try JSONDecoder().decode(ScanStop.self, from: Data(s.messages.last!.header))
        #expect(stop.sent == frames.count && stop.scanID == "scan-1")
    }

    @Test func injectedFaultsHappenAsReported() throws {
        let s = try receive(["--drop", "0.2", "--duplicate", "0.1", "--reorder", "0.1", "--corrupt", "0.1", "--seed", "3"])
        #expect(s.status == 0, "\(s.output)")
        let report = try #require(s.output.firstMatch(of: /sent (\d+) frame messages \(dropped (\d+), duplicated (\d+), reordered (\d+), corrupted (\d+)\)/),
                                  "\(s.output)")
        let (sent, dropped, duplicated, reordered, corrupted) = (Int(report.1)!, Int(report.2)!, Int(report.3)!, Int(report.4)!, Int(report.5)!)
        #expect(dropped > 0 && duplicated > 0 && reordered > 0 && corrupted > 0, "\(s.output)")
        let frames = Array(s.messages.dropFirst().dropLast())
        #expect(frames.count == sent)
        var valid: [Int] = [], bad = 0
        for m in frames {
            do {
                let h = try FrameHeader.decode(m.header)
                _ = try m.payload.withUnsafeBytes { try h.pixels(from: $0) }
                valid.append(h.identifier)
            } catch is FrameError {
                bad += 1
            }
        }
        let scan = try CXIReader(path: RawToCXITests.rawScan).scan
        let total = scan.darkFrames + scan.frames
        // Each corrupted frame is rejected (its duplicate too, when it has one).
        #expect(bad >= corrupted && bad <= 2 * corrupted)
        #expect(Set(valid).count + dropped + corrupted == total)
        #expect(valid.count - Set(valid).count <= duplicated)
        #expect(valid != valid.sorted(), "reordered frames arrive out of order")
    }

    @Test func aDetectorThatDiesSendsNoStop() throws {
        let s = try receive(["--die-after", "10"])
        #expect(s.output.contains("died before stop"), "\(s.output)")
        #expect(s.messages.map(\.topic) == ["start"] + Array(repeating: "frame", count: 10))
    }

    @Test func badOptionsAreRefusedByName() throws {
        let r = try MPIRunner.run(ranks: nil, ["fccd-sim", "--input", RawToCXITests.rawScan, "--rate", "fast"])
        #expect(r.status != 0 && r.stderr.contains("--rate must be a positive number of frames per second or 'max', got 'fast'"), "\(r.stderr)")
        let p = try MPIRunner.run(ranks: nil, ["fccd-sim", "--input", RawToCXITests.rawScan, "--drop", "1.5"])
        #expect(p.status != 0 && p.stderr.contains("--drop must be a probability in 0...1, got 1.5"), "\(p.stderr)")
    }
}
