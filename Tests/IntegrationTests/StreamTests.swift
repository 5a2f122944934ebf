import CXI
import Engines
import Foundation
import Ingest
import Numerics
import Recon
import SwiftHDF5
import SwiftZMQ
import Testing

/// A process running beside the test, its output collected as it comes.
final class BackgroundProcess {
    let process = Process()
    let output = LockedData()
    private let pipe = Pipe()

    init(_ program: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.environment = MPIRunner.environment
        process.standardOutput = pipe
        process.standardError = pipe
        let output = output
        pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        try process.run()
    }

    /// The first match of `pattern` in the output, waiting up to `timeout` seconds.
    func await(_ pattern: String, timeout: Double = 60) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = output.string
            if let r = text.range(of: pattern, options: .regularExpression) { return String(text[r]) }
            if !process.isRunning { return nil }
            usleep(20_000)
        }
        return nil
    }

    /// Waits for the exit (terminating it past `timeout`); the status.
    @discardableResult
    func finish(timeout: Double = 120) -> Int32 {
        ChildProcesses.await(process, timeout: timeout, what: "\(process.arguments ?? [])\n\(output.string)")
        ChildProcesses.drain(pipe, into: output)
        return ChildProcesses.status(process)
    }

    deinit { if process.isRunning { ChildProcesses.stop(process) } }
}

/// `ns-mpirun stream` under mpirun, fed by the virtual detector or by the
/// test itself: the streamed result equals the offline path, nothing valid
/// is lost whatever the wire does, and the control port drives the session.
@Suite(.serialized) struct StreamTests {
    static let endpointPattern = #"tcp://127\.0\.0\.1:[0-9]+"#

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "ns-stream-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The report the session stores in each scan's file.
    func report(_ path: String) throws -> [String: Any] {
        let file = try HDF5File(path: path, mode: .readOnly)
        defer { try? file.close() }
        let text = try file.readString("/entry_1/image_1/process_1/ns_stream_report")
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// fccd-sim on the test's raw scan, and the endpoint it bound.
    func detector(_ extra: [String] = []) throws -> (BackgroundProcess, String) {
        let sim = try BackgroundProcess(MPIRunner.executable, ["fccd-sim", "--input", RawToCXITests.rawScan, "--bind", "tcp://127.0.0.1:*",
                                                              "--rate", "max", "--linger", "3"] + extra)
        let endpoint = try #require(sim.await(Self.endpointPattern), "fccd-sim printed no endpoint: \(sim.output.string)")
        return (sim, endpoint)
    }

    func sent(_ simOutput: String) throws -> [String: Int] {
        let line = try #require(simOutput.split(separator: "\n").first { $0.contains("frame messages") }, "\(simOutput)")
        var out: [String: Int] = [:]
        let words = line.replacingOccurrences(of: ",", with: " ").replacingOccurrences(of: "(", with: " ")
            .replacingOccurrences(of: ")", with: " ").split(separator: " ")
        for (i, w) in words.enumerated() where i + 1 < words.count {
            if let n = Int(words[i + 1]), ["dropped", "duplicated", "reordered", "corrupted"].contains(String(w)) { out[String(w)] = n }
            if w == "sent", let n = Int(words[i + 1]) { out["sent"] = n }
        }
        return out
    }

    /// The shipped live pipeline run as a pipeline (the `stream` stage under
    /// `ns-mpirun run`), its keys set on the command line: the detector's
    /// endpoint, the scan count, and the raw copy kept through `output.save`.
    @Test func theShippedStreamPipelineRunsAsAStage() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A truth from another scan (another grid): said, and not compared.
        let other = dir + "/other.cxi"
        let made = try MPIRunner.run(ranks: nil, ["simulate", "-o", other, "--scan", "3x3", "--frame-size", "64", "--distance", "0.06"])
        try #require(made.status == 0, "\(made.stderr)")
        let (sim, endpoint) = try detector()
        let run = try MPIRunner.run(ranks: 2, ["run", "stream", "--set", "endpoints.detector=\(endpoint)", "--set", "output.directory=\(dir)",
                                               "--set", "output.save=[\"reconstructed\",\"raw\"]", "--set", "stages.session.scans=1",
                                               "--set", "stages.session.iterations=5", "--set", "stages.session.final_seconds=0",
                                               "--set", "stages.session.truth=\(other)"])
        sim.finish()
        try #require(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("session  stream  0-1"), "\(run.stdout)")
        #expect(run.stdout.contains("not compared with the truth: \(other) holds no truth object on this scan's"), "\(run.stdout)")
        let written = try HDF5File(path: dir + "/scan-1.cxi", mode: .readOnly)
        #expect(try written.read("/entry_1/image_1/process_1/ns_truth_nrmse", as: Double.self).allSatisfy(\.isNaN))
        try written.close()
        let r = try report(dir + "/scan-1.cxi")
        #expect(r["placed"] as? Int == 60 && r["darks_used"] as? Int == 20 && r["rejected"] as? Int == 0, "\(r)")
        #expect((r["interference_searches"] as? Int).map { (0...60).contains($0) } == true, "\(r)")
        let raw = try HDF5File(path: dir + "/scan-1-raw.cxi", mode: .readOnly)
        defer { try? raw.close() }
        #expect(try raw.openDataset(CXIPaths.data).shape.first == 60)
    }

    /// With an engine sequence the final phase is that sequence: DM, then ML
    /// taking over after the last frame, as `recon --engines` runs them on
    /// the streamed frames; DM alone for as long ends elsewhere.
    @Test func theFinalPhaseRunsTheEngineSequence() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (sim, endpoint) = try detector()
        let common = ["--fft-planning", "estimate", "--probe-defocus", "15e-6"]
        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, ["-n", "2", MPIRunner.executable, "stream", "--connect", endpoint, "-o", dir,
                                                      "--scans", "1", "--solve-after", "1", "--engines", "dm:6,ml:6", "--final-seconds", "0",
                                                      "--save-clean", "--control", "tcp://127.0.0.1:*", "--log-dir", "none"] + common)
        // The final phase is the sequence's: a final_iterations is refused, by the session, before the scan ends.
        let line = try #require(stream.await("control " + Self.endpointPattern), "\(stream.output.string)")
        let context = try ZMQContext()
        let control = try ZMQSocket(context, .req)
        try control.connect(String(line.dropFirst("control ".count)))
        try control.send(bytes: [Array(#"{"command": "set", "final_iterations": 3}"#.utf8)])
        let reply = try #require(try control.receive(timeoutMilliseconds: 10_000), "no reply to set")
        #expect(String(decoding: reply[0].bytes, as: UTF8.self).contains(#""ok":true"#))
        control.close()
        let status = stream.finish(timeout: 120)
        sim.finish()
        let output = stream.output.string
        try #require(status == 0, "\(output)")
        #expect(output.contains("set refused: set: final_iterations: the final phase is the engine sequence dm:6,ml:6 (12 iterations)"), "\(output)")
        #expect(output.contains("final iteration 7: ml takes over from dm"), "\(output)")
        let streamed = dir + "/scan-1.cxi"
        #expect(try report(streamed)["final_iterations_run"] as? Int == 12)
        func result(_ path: String) throws -> (object: [Complex<Float>], errors: [Double]) {
            let file = try HDF5File(path: path, mode: .readOnly)
            defer { try? file.close() }
            return (try file.read(CXIPaths.image, as: Complex<Float>.self),
                    try file.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self))
        }
        let live = try result(streamed)
        // Iterations before the final phase (the solver may start a round before it) ran DM.
        let before = live.errors.count - 12
        try #require(before >= 0, "\(live.errors.count) iterations")
        let sequence = dir + "/sequence.cxi", dmOnly = dir + "/dm.cxi"
        for (out, engines) in [(sequence, "dm:\(6 + before),ml:6"), (dmOnly, "dm:\(12 + before)")] {
            // The streamed file holds the solved probe: start from the first one, as the session did.
            let recon = try MPIRunner.run(ranks: 2, ["recon", streamed, "-o", out, "--engines", engines, "--ignore-file-probe", "--quiet"] + common)
            try #require(recon.status == 0, "\(recon.stderr)")
        }
        func relative(_ a: [Complex<Float>], _ b: [Complex<Float>]) -> Double {
            let difference = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1).lengthSquared) }
            return (difference / b.reduce(0.0) { $0 + Double($1.lengthSquared) }).squareRoot()
        }
        let offline = try result(sequence), dm = try result(dmOnly)
        try #require(live.object.count == offline.object.count && live.object.count == dm.object.count)
        let same = relative(live.object, offline.object), other = relative(live.object, dm.object)
        #expect(same < 1e-3, "the live sequence differs from recon's by \(same)")
        #expect(other > 10 * same, "DM alone differs by \(other), the sequence by \(same)")
        #expect(zip(live.errors, offline.errors).allSatisfy { abs($0 - $1) <= 1e-3 * $1 }, "\(live.errors) vs \(offline.errors)")
    }

    @Test func streamedScanEqualsRawToCXIThenRecon() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (sim, endpoint) = try detector()
        // The solver starts once every frame is placed, so the iterations see what an offline run sees.
        let run = try MPIRunner.run(ranks: 2, ["stream", "--connect", endpoint, "-o", dir, "--scans", "1", "--solve-after", "1",
                                               "--iterations", "15", "--final-seconds", "0", "--fft-planning", "estimate", "--probe-defocus", "15e-6",
                                               "--save-clean", "--save-raw", "--truth", RawToCXITests.rawScan])
        sim.finish()
        try #require(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let streamed = dir + "/scan-1.cxi"
        // The start carried the raw file's optics: the first probe is the zone plate's, and the files record them.
        #expect(run.stdout.contains("first probe from the recorded zone plate"), "\(run.stdout)")
        let optics = try CXIReader(path: RawToCXITests.rawScan).scan.optics
        let streamedOptics = try CXIReader(path: streamed).scan.optics, rawOptics = try CXIReader(path: dir + "/scan-1-raw.cxi").scan.optics
        #expect(optics != nil && streamedOptics == optics && rawOptics == optics)
        let r = try report(streamed)
        #expect(r["received"] as? Int == 80)
        #expect(r["darks_used"] as? Int == 20)
        #expect(r["cleaned"] as? Int == 60)
        #expect(r["placed"] as? Int == 60)
        #expect(r["rejected"] as? Int == 0)
        let file = try HDF5File(path: streamed, mode: .readOnly)
        let object = try file.read(CXIPaths.image, as: Complex<Float>.self)
        let probe = try file.read(CXIPaths.illumination, as: Complex<Float>.self)
        let errors = try file.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        let liveNRMSE = try file.read("/entry_1/image_1/process_1/ns_truth_nrmse", as: Double.self)
        let iterations = errors.count
        try file.close()
        #expect(iterations >= 15)

        let clean = dir + "/clean.cxi", offline = dir + "/offline.cxi"
        let pre = try MPIRunner.run(ranks: 2, ["raw2cxi", RawToCXITests.rawScan, "-o", clean, "--probe-defocus", "15e-6", "--quiet"])
        try #require(pre.status == 0, "\(pre.stderr)")
        let recon = try MPIRunner.run(ranks: 2, ["recon", clean, "-o", offline, "--iterations", String(iterations),
                                                 "--fft-planning", "estimate", "--quiet"])
        try #require(recon.status == 0, "\(recon.stderr)")
        // The frames cleaned live are the frames cleaned offline (within float rounding of the merged darks).
        let cleanLive = try HDF5File(path: streamed, mode: .readOnly)
        let liveFrames = try cleanLive.read(CXIPaths.data, as: Float.self)
        let liveMask = try cleanLive.read(CXIPaths.mask, as: UInt32.self)
        let missing = try cleanLive.read("/entry_1/image_1/process_1/ns_missing_frames", as: Int64.self)
        try cleanLive.close()
        let cleanOffline = try HDF5File(path: clean, mode: .readOnly)
        let offlineFrames = try cleanOffline.read(CXIPaths.data, as: Float.self)
        #expect(liveMask == (try cleanOffline.read(CXIPaths.mask, as: UInt32.self)))
        try cleanOffline.close()
        try #require(liveFrames.count == offlineFrames.count)
        let worst = zip(liveFrames, offlineFrames).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-3, "largest difference \(worst) photons")
        #expect(missing.isEmpty)
        // The raw copy holds every raw frame and dark exactly as the detector sent them.
        let rawCopy = try HDF5File(path: dir + "/scan-1-raw.cxi", mode: .readOnly)
        let original = try HDF5File(path: RawToCXITests.rawScan, mode: .readOnly)
        #expect(try rawCopy.read(CXIPaths.data, as: UInt16.self) == original.read(CXIPaths.data, as: UInt16.self))
        #expect(try rawCopy.read(CXIPaths.dark, as: UInt16.self) == original.read(CXIPaths.dark, as: UInt16.self))
        try rawCopy.close()
        try original.close()
        // And the streamed file is a scan `recon` can read again.
        let again = try MPIRunner.run(ranks: 2, ["recon", streamed, "-o", dir + "/again.cxi", "--iterations", "2", "--quiet"])
        #expect(again.status == 0, "\(again.stderr)")

        let reference = try HDF5File(path: offline, mode: .readOnly)
        let expected = try reference.read(CXIPaths.image, as: Complex<Float>.self)
        let expectedProbe = try reference.read(CXIPaths.illumination, as: Complex<Float>.self)
        let expectedErrors = try reference.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        let offlineNRMSE = try reference.read("/entry_1/image_1/process_1/ns_truth_nrmse", as: Double.self)
        try reference.close()
        // Compared with the simulation's truth live (--truth) as offline: the same final NRMSE, in the file and the log.
        let final = try #require(liveNRMSE.last), expectedFinal = try #require(offlineNRMSE.last)
        #expect(final.isFinite && abs(final - expectedFinal) < 1e-3, "live \(final), offline \(expectedFinal)")
        #expect(run.stdout.contains(String(format: "NRMSE against the truth %.4f", final)), "\(run.stdout)")
        func relative(_ a: [Complex<Float>], _ b: [Complex<Float>]) -> Double {
            let difference = zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1).lengthSquared) }
            return (difference / b.reduce(0.0) { $0 + Double($1.lengthSquared) }).squareRoot()
        }
        try #require(object.count == expected.count, "object \(object.count) vs \(expected.count) pixels")
        // Darks merged and the centre summed in another order: rounding, which the
        // barely lit edge of the object amplifies most, and which the interference
        // line search (its steps compared in single precision) can turn into a
        // slightly different fit; the errors agree to a few 1e-5.
        #expect(relative(object, expected) < 2e-3)
        #expect(relative(probe, expectedProbe) < 1e-3)
        for (a, b) in zip(errors, expectedErrors) { #expect(abs(a - b) <= 5e-5 * b) }
    }

    /// A `start` without translations: the frames' own positions tile the
    /// scan once they are all in, to the same tiles, translations and result.
    @Test func positionsCarriedByTheFramesTileTheSameScan() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var files: [String] = []
        for (name, extra) in [("start", [String]()), ("frames", ["--positions-in-frames"])] {
            let (sim, endpoint) = try detector(extra + ["--scan-id", name])
            let run = try MPIRunner.run(ranks: 2, ["stream", "--connect", endpoint, "-o", dir, "--scans", "1", "--solve-after", "1",
                                                   "--iterations", "5", "--final-seconds", "0", "--fft-planning", "estimate",
                                                   "--save-raw"])
            sim.finish()
            try #require(run.status == 0, "\(run.stdout)\n\(run.stderr)")
            if name == "frames" { #expect(run.stdout.contains("positions from the frames")) }
            files.append(dir + "/\(name).cxi")
        }
        let a = try HDF5File(path: files[0], mode: .readOnly), b = try HDF5File(path: files[1], mode: .readOnly)
        defer { try? a.close(); try? b.close() }
        for path in ["/entry_1/image_1/process_1/ns_tiles", "/entry_1/image_1/process_1/ns_frame_owner"] {
            #expect(try a.read(path, as: Int64.self) == b.read(path, as: Int64.self), "\(path)")
        }
        #expect(try a.read(CXIPaths.translation, as: Double.self) == b.read(CXIPaths.translation, as: Double.self))
        #expect(try report(files[1])["placed"] as? Int == 60)
        // The raw copy gets the positions too, once known.
        let raw = try HDF5File(path: dir + "/frames-raw.cxi", mode: .readOnly)
        #expect(try raw.read(CXIPaths.translation, as: Double.self) == a.read(CXIPaths.translation, as: Double.self))
        try raw.close()
        // The same frames, positions and iterations: the same object, up to the
        // order the first probe's mean was summed in (frames held for the tiles
        // are placed later).
        let errorsA = try a.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        let errorsB = try b.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        if errorsA.count == errorsB.count {
            let x = try a.read(CXIPaths.image, as: Complex<Float>.self), y = try b.read(CXIPaths.image, as: Complex<Float>.self)
            let difference = zip(x, y).reduce(0.0) { $0 + Double(($1.0 - $1.1).lengthSquared) }
            #expect((difference / y.reduce(0.0) { $0 + Double($1.lengthSquared) }).squareRoot() < 1e-4)
        }
    }

    @Test func faultyWireLosesNothingValid() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (sim, endpoint) = try detector(["--duplicate", "0.1", "--reorder", "0.1", "--corrupt", "0.05", "--seed", "7"])
        let run = try MPIRunner.run(ranks: 2, ["stream", "--connect", endpoint, "-o", dir, "--scans", "1", "--iterations", "5"])
        try #require(sim.finish() == 0)
        try #require(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let s = try sent(sim.output.string)
        let r = try report(dir + "/scan-1.cxi")
        let received = try #require(r["received"] as? Int), darks = try #require(r["darks_used"] as? Int)
        let cleaned = try #require(r["cleaned"] as? Int), rejected = try #require(r["rejected"] as? Int)
        let placed = try #require(r["placed"] as? Int)
        #expect((s["duplicated"] ?? 0) > 0 && (s["reordered"] ?? 0) > 0 && (s["corrupted"] ?? 0) > 0, "\(s)")
        #expect(received == s["sent"])
        // Frames in = frames used + frames rejected.
        #expect(received == darks + cleaned + rejected)
        #expect(cleaned == placed)
        // Every frame sent intact at least once is used exactly once.
        #expect(darks + placed + (s["corrupted"] ?? 0) == 80)
        let rejections = try #require(r["rejections"] as? [String: Int])
        #expect(rejections.keys.contains { $0.contains("duplicate") })
        #expect(rejections.keys.contains { $0.contains("dtype") || $0.contains("payload") })
    }

    @Test func silentSenderEndsTheScanWithWhatArrived() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (sim, endpoint) = try detector(["--die-after", "50"])
        let run = try MPIRunner.run(ranks: 2, ["stream", "--connect", endpoint, "-o", dir, "--scans", "1", "--iterations", "5",
                                               "--frame-timeout", "2"])
        sim.finish()
        try #require(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let r = try report(dir + "/scan-1.cxi")
        #expect(r["placed"] as? Int == 30)
        #expect(r["missing"] as? Int == 30)
        #expect(r["stop_received"] as? Bool == false)
        #expect(r["received"] as? Int == 50)
        #expect((r["darks_used"] as? Int ?? 0) + (r["cleaned"] as? Int ?? 0) + (r["rejected"] as? Int ?? 0) == 50)
        #expect(run.stdout.contains("30 missing: the sender went silent without 'stop'"))
    }
}

/// The test as the detector: messages no real sender would send, the
/// control port, an aborted scan and two more in one job.
@Suite(.serialized) struct StreamControlTests {
    let context: ZMQContext
    let push: ZMQSocket
    let endpoint: String
    let scan: CXIReader

    init() throws {
        context = try ZMQContext()
        push = try ZMQSocket(context, .push)
        endpoint = try push.bind("tcp://127.0.0.1:*")
        scan = try CXIReader(path: RawToCXITests.cleanScan)
    }

    func json<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return Array(try e.encode(value))
    }

    func start(_ id: String) throws {
        let s = scan.scan
        let start = ScanStart(scanID: id, frames: s.frames, darks: 0, shapeY: s.frameHeight, shapeX: s.frameWidth, dtype: "float32",
                              energy: s.energy, distance: s.distance, xPixelSize: s.xPixelSize, yPixelSize: s.yPixelSize,
                              translations: s.positions.map { [$0.y, $0.x] })
        try push.send(bytes: [Array("start".utf8), try json(start), []])
    }

    func frame(_ index: Int) throws {
        let s = scan.scan
        let pixels = try scan.readFrames(first: index, count: 1)
        let header = FrameHeader(shapeY: s.frameHeight, shapeX: s.frameWidth, dtype: "float32", identifier: index, index: index,
                                 posy: s.positions[index].y, posx: s.positions[index].x)
        try push.send(bytes: [Array("frame".utf8), try json(header), pixels.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Array($0) }])
    }

    func stop(_ id: String) throws {
        try push.send(bytes: [Array("stop".utf8), try json(ScanStop(scanID: id, sent: 0)), []])
    }

    func ask(_ control: ZMQSocket, _ request: String) throws -> [String: Any] {
        try control.send(bytes: [Array(request.utf8)])
        let reply = try #require(try control.receive(timeoutMilliseconds: 10_000), "no reply to \(request)")
        return try #require(try JSONSerialization.jsonObject(with: Data(reply[0].bytes)) as? [String: Any])
    }

    @Test func abortAndBadMessagesThenTwoScansInOneJob() throws {
        let dir = NSTemporaryDirectory() + "ns-stream-control-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, ["-n", "2", MPIRunner.executable, "stream", "--connect", endpoint, "-o", dir,
                                                      "--control", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*",
                                                      "--iterations", "5", "--frame-timeout", "30", "--log-dir", dir + "/logs",
                                                      "--publish-every", "2", "--status-interval", "0.2", "--metrics", "127.0.0.1:0"])
        let line = try #require(stream.await("control " + StreamTests.endpointPattern), "\(stream.output.string)")
        let metricsLine = try #require(stream.await(#"metrics for Prometheus on http://[0-9.:]+/metrics"#), "\(stream.output.string)")
        // Every rank's log as one timeline, followed while the session runs.
        // The idle limit outlasts any quiet spell of a loaded machine (CI ran
        // 3 s without a line while parallel tests shared its two cores).
        let follower = try BackgroundProcess(MPIRunner.executable, ["logs", dir, "--follow", "--idle-exit", "20"])
        let control = try ZMQSocket(context, .req)
        try control.connect(String(line.dropFirst("control ".count)))
        let published = try #require(stream.await("publishing on " + StreamTests.endpointPattern), "\(stream.output.string)")
        let viewer = try ZMQSocket(context, .sub)
        try viewer.subscribe("")
        try viewer.connect(String(published.dropFirst("publishing on ".count)))

        // Before any start: a frame, an unknown topic, a start for a scan of no frames.
        try frame(0)
        try push.send(bytes: [Array("hello".utf8), [], []])
        let s = scan.scan
        let bad = ScanStart(scanID: "bad", frames: 0, darks: 0, shapeY: s.frameHeight, shapeX: s.frameWidth, dtype: "float32",
                            energy: s.energy, distance: s.distance, xPixelSize: s.xPixelSize, yPixelSize: s.yPixelSize)
        try push.send(bytes: [Array("start".utf8), try json(bad), []])

        // Scan A: a few frames, then abort through the control port.
        try start("a")
        for i in 0..<10 { try frame(i) }
        var status: [String: Any] = [:]
        for _ in 0..<200 {
            status = try ask(control, #"{"command": "status"}"#)
            if status["received"] as? Int == 10 { break }
            usleep(50_000)
        }
        #expect(status["scan_id"] as? String == "a")
        #expect(status["received"] as? Int == 10)
        #expect((status["ranks"] as? [[String: Any]])?.count == 2)
        #expect(status["outside_scan_rejected"] as? Int == 3)
        #expect(try ask(control, #"{"command": "abort"}"#)["ok"] as? Bool == true)
        for _ in 0..<100 {
            status = try ask(control, #"{"command": "status"}"#)
            if status["scan_id"] == nil { break }
            usleep(20_000)
        }
        #expect(status["scan_id"] == nil, "\(status)")

        // Settings pass through validation.
        let refused = try ask(control, #"{"command": "set", "beta": 2}"#)
        #expect(refused["ok"] as? Bool == false)
        #expect((refused["error"] as? String)?.contains("beta") == true)
        #expect(try ask(control, #"{"command": "set", "final_iterations": 3}"#)["ok"] as? Bool == true)
        #expect(try ask(control, #"{"command": "launch"}"#)["ok"] as? Bool == false)

        // Scan B, out of order, with a duplicate, a broken frame and a frame after stop.
        try start("b")
        for i in (0..<s.frames).reversed() { try frame(i) }
        try frame(5)
        try push.send(bytes: [Array("frame".utf8), Array("{not json".utf8), [1, 2, 3]])
        try stop("b")
        try frame(6)
        // Scan C: the sender restarts halfway and sends everything again.
        try start("c")
        for i in 0..<(s.frames / 2) { try frame(i) }
        try start("c")
        for i in 0..<s.frames { try frame(i) }
        try stop("c")
        try #require(stream.await("scan c done", timeout: 120) != nil, "\(stream.output.string)")
        // The lifetime counters, by reason, over the three scans and what came outside them.
        let metrics = try Exposition.fetch(String(metricsLine.split(separator: " ").last!))
        #expect(metrics.status == 200, "\(metrics)")
        func sample(_ name: String) -> Double { Exposition.value(metrics.body, name) ?? -1 }
        #expect(sample("ns_frames_received_total") == Double(1 + 10 + (s.frames + 3) + s.frames / 2 + s.frames), "\(metrics.body)")
        #expect(sample(#"ns_frames_rejected_total{reason="duplicate"}"#) == Double(1 + s.frames / 2))
        #expect(sample(#"ns_frames_rejected_total{reason="malformed"}"#) == 1)
        #expect(sample(#"ns_frames_rejected_total{reason="no_scan"}"#) + sample(#"ns_frames_rejected_total{reason="after_stop"}"#) == 2)
        #expect(sample(#"ns_messages_rejected_total{reason="unknown_topic"}"#) == 1)
        #expect(sample(#"ns_messages_rejected_total{reason="scan_refused"}"#) == 1)
        #expect(sample("ns_scans_aborted_total") == 1 && sample("ns_scans_written_total") == 2)
        #expect((2 * s.frames...(2 * s.frames + 10)).contains(Int(sample("ns_frames_placed_total"))))
        #expect(sample("ns_frame_latency_seconds_count") == Double(2 * s.frames))
        #expect(sample("ns_ranks") == 2)
        #expect(try ask(control, #"{"command": "shutdown"}"#)["ok"] as? Bool == true)

        #expect(stream.finish(timeout: 60) == 0, "\(stream.output.string)")
        #expect(stream.output.string.contains("shut down after 3 scan(s)"))
        #expect(follower.finish(timeout: 60) == 0)
        let timeline = follower.output.string
        #expect(timeline.contains(" rank 1 info: stream: rank 1 of 2 ready") && timeline.contains(" rank 0 info: stream: scan c done"),
                "\(timeline)")
        // Read at once, the whole run is one time-ordered list.
        let merged = try MPIRunner.run(ranks: nil, ["logs", dir])
        let stamps = merged.stdout.split(separator: "\n").map { $0.prefix(24) }
        #expect(stamps.count >= 4 && stamps == stamps.sorted(), "\(merged.stdout)")
        let text = stream.output.string
        #expect(text.contains("scan a aborted"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/a.cxi"))
        let tests = StreamTests()
        let b = try tests.report(dir + "/b.cxi"), c = try tests.report(dir + "/c.cxi")
        #expect(b["placed"] as? Int == s.frames)
        #expect(b["final_iterations"] as? Int == 3)
        // 60 frames, the duplicate, the broken one; the frame after stop is counted in b or outside any scan.
        let received = try #require(b["received"] as? Int)
        #expect(received == s.frames + 2 || received == s.frames + 3)
        #expect(received == (b["cleaned"] as? Int ?? -1) + (b["rejected"] as? Int ?? -1))
        #expect(text.contains("arrived after 'stop'") || text.contains("frame 6: no scan is open"))
        #expect(c["placed"] as? Int == s.frames)
        #expect(c["sender_restarts"] as? Int == 1)
        #expect(c["rejected"] as? Int == s.frames / 2, "the repeated half counted once, the repeats rejected as duplicates")
        #expect(c["received"] as? Int == (c["cleaned"] as? Int ?? -1) + (c["rejected"] as? Int ?? -1))
        control.close()

        // What a viewer saw: status messages, and reconstructions of b and c, each ending with a final one.
        var topics: [String: Int] = [:]
        var finals: [String] = []
        var finalSTXM: [String: [Float]] = [:]
        while let parts = try viewer.receive(timeoutMilliseconds: 500) {
            let topic = parts[0].string
            topics[topic, default: 0] += 1
            guard topic == "rec" else { continue }
            let header = try #require(try JSONSerialization.jsonObject(with: Data(parts[1].bytes)) as? [String: Any])
            let shape = try #require(header["object_shape"] as? [Int]), probe = try #require(header["probe_shape"] as? [Int])
            let frame = try #require(header["frame_shape"] as? [Int]), stxm = try #require(header["stxm_shape"] as? [Int])
            #expect(parts.count == 6 && parts[2].bytes.count == shape[0] * shape[1] * 8 && parts[3].bytes.count == probe[0] * probe[1] * 8
                    && parts[4].bytes.count == frame[0] * frame[1] * 4 && parts[5].bytes.count == stxm[0] * stxm[1] * 4)
            if header["final"] as? Bool == true {
                finals.append(header["scan_id"] as? String ?? "")
                finalSTXM[header["scan_id"] as? String ?? ""] = parts[5].bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
        }
        viewer.close()
        // The last published STXM image is the file's (it was once twice it: reduced over the ranks twice).
        for id in ["b", "c"] {
            let file = try HDF5File(path: dir + "/\(id).cxi", mode: .readOnly)
            let stored = try file.read(CXIPaths.scanImages + "/transmission_image", as: Double.self)
            try file.close()
            let published = try #require(finalSTXM[id])
            #expect(published.count == stored.count && zip(published, stored).allSatisfy { a, b in
                (a.isNaN && b.isNaN) || abs(Double(a) - b) <= 1e-5 * max(1, abs(b))
            }, "scan \(id): published \(published.prefix(8)) vs file \(stored.prefix(8))")
        }
        #expect((topics["status"] ?? 0) >= 2, "\(topics)")
        // Periodic ones come only when iterations run between frames (timing); the finals always.
        #expect((topics["rec"] ?? 0) >= 2, "\(topics)")
        #expect(finals == ["b", "c"])
    }

    /// A live `set` of an engine that would not fit beside the running one
    /// at the handover is refused, said in the status, and the solve goes
    /// on; one that fits takes over.
    @Test func anEngineChangeThatWouldNotFitIsRefusedAndTheScanGoesOn() throws {
        let dir = NSTemporaryDirectory() + "ns-stream-memory-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = scan.scan
        // A budget between DM alone (one value per frame pixel) and DM handing over to ML (1 + 2).
        let pixel = Geometry(energy: s.energy, distance: s.distance, detectorPixelSize: s.xPixelSize, frameSize: s.frameHeight).samplePixelSize
        func cost(_ engines: [String]) -> Double {
            ScanCost(frames: s.frames, frameSize: s.frameHeight, positions: s.positions, samplePixelSize: pixel, ranks: 2,
                     engineFrameValues: EngineRegistry.peakFrameValues(engines)).bytesPerRank
        }
        let (fits, refused) = (cost(["dm"]), cost(["dm", "ml"]))
        try #require(refused > fits && cost(["dm", "rpie"]) <= fits)
        let budgetGB = String(format: "%.9f", (fits + refused) / 2 / 1e9)
        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, ["-n", "2", MPIRunner.executable, "stream", "--connect", endpoint, "-o", dir,
                                                      "--control", "tcp://127.0.0.1:*", "--iterations", "3", "--frame-timeout", "30",
                                                      "--max-memory-gb", budgetGB, "--status-interval", "0.2"])
        let line = try #require(stream.await("control " + StreamTests.endpointPattern), "\(stream.output.string)")
        let control = try ZMQSocket(context, .req)
        defer { control.close() }
        try control.connect(String(line.dropFirst("control ".count)))

        try start("m")
        for i in 0..<(s.frames / 2) { try frame(i) }
        var status: [String: Any] = [:]
        for _ in 0..<400 {
            status = try ask(control, #"{"command": "status"}"#)
            if let ranks = status["ranks"] as? [[String: Any]], ranks.reduce(0, { $0 + ($1["placed"] as? Int ?? 0) }) > 0 { break }
            usleep(50_000)
        }
        #expect(status["scan_id"] as? String == "m", "\(status)")
        // Known engine, so accepted at the port; refused where the session checks it against the scan.
        #expect(try ask(control, #"{"command": "set", "algorithm": "ml"}"#)["ok"] as? Bool == true)
        for _ in 0..<200 {
            status = try ask(control, #"{"command": "status"}"#)
            if status["last_refused_set"] != nil { break }
            usleep(50_000)
        }
        let why = try #require(status["last_refused_set"] as? String, "\(status)")
        #expect(why.contains("algorithm ml") && why.contains("GB") && why.contains("--max-memory-gb"), "\(why)")
        // rPIE keeps nothing per frame: it fits beside DM and takes over.
        #expect(try ask(control, #"{"command": "set", "algorithm": "rpie"}"#)["ok"] as? Bool == true)
        #expect(stream.await("settings now: .*rpie") != nil, "\(stream.output.string)")
        for i in (s.frames / 2)..<s.frames { try frame(i) }
        try stop("m")
        try #require(stream.await("scan m done", timeout: 120) != nil, "\(stream.output.string)")
        let report = try StreamTests().report(dir + "/m.cxi")
        #expect(report["placed"] as? Int == s.frames)
        let file = try HDF5File(path: dir + "/m.cxi", mode: .readOnly)
        let parameters = try file.readString("/entry_1/image_1/process_1/ns_parameters")
        try file.close()
        #expect(parameters.contains(#""algorithm":"rpie""#), "\(parameters)")
        #expect(try ask(control, #"{"command": "shutdown"}"#)["ok"] as? Bool == true)
        #expect(stream.finish(timeout: 60) == 0, "\(stream.output.string)")
    }

    /// A rank killed mid-scan: MPI ends the job (no hang), with the
    /// launcher's message naming the rank, and the scans written before stay
    /// whole.
    @Test func aKilledRankEndsTheJobAndTheWrittenScansStay() throws {
        let dir = NSTemporaryDirectory() + "ns-stream-kill-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, ["-n", "2", MPIRunner.executable, "stream", "--connect", endpoint, "-o", dir,
                                                      "--iterations", "3", "--log-dir", dir + "/logs"])
        try #require(stream.await("receiving from") != nil, "\(stream.output.string)")
        try start("first")
        for i in 0..<scan.scan.frames { try frame(i) }
        try stop("first")
        try #require(stream.await("scan first done", timeout: 120) != nil, "\(stream.output.string)")
        let log = (try? String(contentsOfFile: dir + "/logs/rank-0001.log", encoding: .utf8)) ?? ""
        let pid = try #require(log.firstMatch(of: /rank 1 of 2 ready, pid ([0-9]+)/).flatMap { Int32($0.1) }, "\(log)")
        try start("second")
        for i in 0..<10 { try frame(i) }
        usleep(500_000)
        kill(pid, SIGKILL)
        let status = stream.finish(timeout: 60)
        #expect(status != 0)
        #expect(stream.output.string.localizedCaseInsensitiveContains("signal 9") || stream.output.string.contains("Killed"),
                "\(stream.output.string)")
        let first = try StreamTests().report(dir + "/first.cxi")
        #expect(first["placed"] as? Int == scan.scan.frames)
        #expect(!FileManager.default.fileExists(atPath: dir + "/second.cxi"))
    }
}
