import Foundation
import SwiftHDF5
import Testing

/// A live session whose every port speaks CURVE, driven by remote clients
/// as a beamline would (pyzmq with the certificate files `keys generate`
/// writes): the detector lets in the session's key only, a scan streams and
/// is written whole, a listed client reads status (the docs' own Python
/// example), a non-operator's abort is refused and logged with its key, an
/// unlisted key and a plaintext client get nothing, and an operator shuts
/// the session down. Plaintext beyond loopback is refused at start.
@Suite(.serialized) struct CurveSessionTests {
    static let python = "/usr/bin/python3"
    static var pyzmq: Bool { (try? MPIRunner.execute(python, ["-c", "import zmq.auth"]).status) == 0 }
    static let client = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Remote/control_client.py").path
    static let protocolDoc = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/PROTOCOL.md").path

    func keys(_ dir: String, _ names: [String]) throws {
        for name in names {
            let run = try MPIRunner.run(ranks: nil, ["keys", "generate", dir + "/keys", "--name", name])
            try #require(run.status == 0, "\(run.stderr)")
        }
    }

    /// Makes DIR/NAME holding the public keys of `names`.
    func list(_ dir: String, _ name: String, _ names: [String]) throws {
        try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: true)
        for n in names { try FileManager.default.copyItem(atPath: dir + "/keys/\(n).key", toPath: dir + "/\(name)/\(n).key") }
    }

    func ask(_ endpoint: String, as key: String?, _ dir: String, _ request: String) throws -> [String: Any] {
        let secret = key.map { dir + "/keys/\($0).key_secret" } ?? "-"
        let run = try MPIRunner.execute(Self.python, [Self.client, endpoint, secret, dir + "/keys/session.key", request, "3"], timeout: 30)
        try #require(run.status == 0, "\(run.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout)")
    }

    /// The Python block of docs/PROTOCOL.md marked `curve-client`.
    func documentedClient() throws -> String {
        let doc = try String(contentsOfFile: Self.protocolDoc, encoding: .utf8)
        let marker = try #require(doc.range(of: "<!-- curve-client"), "docs/PROTOCOL.md lost its curve-client example")
        let start = try #require(doc.range(of: "```python\n", range: marker.upperBound..<doc.endIndex))
        let end = try #require(doc.range(of: "```", range: start.upperBound..<doc.endIndex))
        return String(doc[start.upperBound..<end.lowerBound])
    }

    @Test(.enabled(if: Self.pyzmq, "needs Debian's python3-zmq (scripts/test.sh installs it)"))
    func aSessionBehindCurveServesListedKeysAndOperatorsOnly() throws {
        let dir = NSTemporaryDirectory() + "ns-curve-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try keys(dir, ["detector", "session", "alice", "bob", "mallory"])
        try list(dir, "receivers", ["session"])
        try list(dir, "clients", ["alice", "bob"])
        try list(dir, "operators", ["alice"])

        let sim = try BackgroundProcess(MPIRunner.executable, [
            "fccd-sim", "--input", RawToCXITests.rawScan, "--bind", "tcp://127.0.0.1:*", "--rate", "max", "--linger", "3",
            "--curve-secret", dir + "/keys/detector.key_secret", "--curve-clients", dir + "/receivers"])
        defer { sim.finish(timeout: 30) }
        let detector = try #require(sim.await(StreamTests.endpointPattern), "\(sim.output.string)")
        #expect(sim.output.string.contains("CURVE"))
        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, [
            "-n", "2", MPIRunner.executable, "stream", "--connect", detector, "-o", dir + "/scans", "--log-dir", "none",
            "--control", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*", "--iterations", "5", "--status-interval", "0.2",
            "--curve-secret", dir + "/keys/session.key_secret", "--detector-key", dir + "/keys/detector.key",
            "--curve-clients", dir + "/clients", "--curve-operators", dir + "/operators"])
        defer { if stream.process.isRunning { stream.finish(timeout: 30) } }
        let controlLine = try #require(stream.await("control " + StreamTests.endpointPattern), "\(stream.output.string)")
        let control = String(controlLine.dropFirst("control ".count))
        let publishLine = try #require(stream.await("publishing on " + StreamTests.endpointPattern), "\(stream.output.string)")
        let publish = String(publishLine.dropFirst("publishing on ".count))

        // The whole scan crossed the CURVE link from the detector.
        try #require(stream.await("scan scan-1 done", timeout: 120) != nil, "\(stream.output.string)")
        let file = try HDF5File(path: dir + "/scans/scan-1.cxi", mode: .readOnly)
        let text = try file.readString("/entry_1/image_1/process_1/ns_stream_report")
        try file.close()
        let written = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let frames = try #require(written["frames"] as? Int), darks = try #require(written["darks"] as? Int)
        #expect(frames > 0 && written["placed"] as? Int == frames && written["darks_used"] as? Int == darks, "\(written)")
        #expect(written["received"] as? Int == frames + darks && written["rejected"] as? Int == 0, "\(written)")

        // The documented client, as bob (a listed key, not an operator), against this session.
        try FileManager.default.createDirectory(atPath: dir + "/client/keys", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/keys/bob.key_secret", toPath: dir + "/client/keys/alice.key_secret")
        try FileManager.default.copyItem(atPath: dir + "/keys/session.key", toPath: dir + "/client/keys/session.key")
        let example = try documentedClient().replacingOccurrences(of: "tcp://cluster.example:5556", with: control)
            .replacingOccurrences(of: "tcp://cluster.example:5557", with: publish)
        try example.write(toFile: dir + "/client/example.py", atomically: true, encoding: .utf8)
        let documented = try MPIRunner.execute("/bin/sh", ["-c", "cd '\(dir)/client' && timeout 20 \(Self.python) example.py"])
        #expect(documented.status == 0 && documented.stdout.contains("status: idle") && documented.stdout.contains("published: idle"),
                "\(documented.stdout)\n\(documented.stderr)")

        let status = try ask(control, as: "bob", dir, #"{"command": "status"}"#)
        #expect(status["ok"] as? Bool == true && status["scans_finished"] as? Int == 1, "\(status)")
        let abort = try ask(control, as: "bob", dir, #"{"command": "shutdown"}"#)
        #expect(abort["ok"] as? Bool == false && (abort["error"] as? String)?.contains("operator") == true, "\(abort)")
        #expect(try ask(control, as: "mallory", dir, #"{"command": "shutdown"}"#)["no_answer"] as? Bool == true)
        #expect(try ask(control, as: nil, dir, #"{"command": "shutdown"}"#)["no_answer"] as? Bool == true)
        #expect(stream.process.isRunning, "a refused client stopped the session:\n\(stream.output.string)")

        let shutdown = try ask(control, as: "alice", dir, #"{"command": "shutdown"}"#)
        #expect(shutdown["ok"] as? Bool == true, "\(shutdown)")
        #expect(stream.finish(timeout: 60) == 0, "\(stream.output.string)")
        let log = stream.output.string
        #expect(log.contains("refused 'shutdown' from key bob"), "\(log)")
        let malloryKey = try String(contentsOfFile: dir + "/keys/mallory.key", encoding: .utf8)
        let id = try #require(malloryKey.range(of: #"public-key = "(.{8})"#, options: .regularExpression).map { String(malloryKey[$0].suffix(8)) })
        #expect(log.contains("refused a connection") && log.contains("key \(id)"), "\(log)")
    }

    /// An address beyond loopback without keys stops each program before it
    /// binds, naming the endpoint and the options that would secure it.
    @Test func plaintextBeyondLoopbackIsRefusedAtStart() throws {
        let dir = NSTemporaryDirectory() + "ns-plain-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let runs: [([String], String)] = [
            (["stream", "--connect", "tcp://127.0.0.1:1", "--control", "tcp://*:0", "-o", dir, "--scans", "1"], "tcp://*:0"),
            (["stream", "--connect", "tcp://192.0.2.1:5555", "-o", dir, "--scans", "1"], "--detector-key"),
            (["fccd-sim", "--bind", "tcp://0.0.0.0:0"], "--curve-clients"),
            (["view", "--session", "tcp://192.0.2.1:5557,tcp://192.0.2.1:5556", "--http", "127.0.0.1:0"], "--session-key"),
        ]
        for (arguments, named) in runs {
            let run = try MPIRunner.run(ranks: nil, arguments, timeout: 60)
            #expect(run.status != 0, "\(arguments) started")
            #expect(run.stderr.contains(named) && run.stderr.contains("keys generate"), "\(arguments): \(run.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/logs"), "the refused session started")
    }
}
