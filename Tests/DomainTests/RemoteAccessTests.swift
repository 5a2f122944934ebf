import Foundation
import RemoteAccess
import Streaming
import SwiftZMQ
import Testing

/// CURVE keys and who they let in: certificate files as ZeroMQ's tools
/// write them, never overwritten and never readable by others; the ZAP
/// handler admits listed keys only and names the refused; plaintext beyond
/// loopback is refused before anything binds.
@Suite struct RemoteAccessTests {
    func folder() throws -> String {
        let dir = NSTemporaryDirectory() + "ns-keys-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test func aGeneratedPairReadsBackAndItsSecretIsTheOwnersAlone() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pair = try CurveCertificate.generate(name: "alice")
        let files = try pair.write(to: dir)
        #expect(files.publicFile == dir + "/alice.key" && files.secretFile == dir + "/alice.key_secret")
        #expect(try mode(files.secretFile) == 0o600)
        let secret = try CurveCertificate.load(files.secretFile, secret: true)
        #expect(secret == pair)
        let shared = try CurveCertificate.load(files.publicFile, secret: false)
        #expect(shared.publicKey == pair.publicKey && shared.secretKey == nil && shared.name == "alice")
        #expect(try String(contentsOfFile: files.publicFile, encoding: .utf8).contains(pair.secretKey!) == false)
        // The public file is not a secret one, and a secret others may read is refused.
        #expect(throws: KeyError.self) { try CurveCertificate.load(files.publicFile, secret: true) }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: files.secretFile)
        let open = #expect(throws: KeyError.self) { try CurveCertificate.load(files.secretFile, secret: true) }
        #expect(open?.description.contains("chmod 600") == true)
    }

    @Test func anExistingKeyIsNeverOverwritten() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try CurveCertificate.generate(name: "beamline").write(to: dir)
        let before = try [first.publicFile, first.secretFile].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        let error = #expect(throws: KeyError.self) { try CurveCertificate.generate(name: "beamline").write(to: dir) }
        #expect(error?.description.contains("never overwritten") == true)
        let after = try [first.publicFile, first.secretFile].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        #expect(before == after)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["beamline.key", "beamline.key_secret"])
        #expect(throws: KeyError.self) { try CurveCertificate.generate(name: "../escape").write(to: dir) }
    }

    @Test func filesThatAreNotCertificatesAreNamed() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, Data, String)] = [
            ("empty.key", Data(), "no public-key"),
            ("short.key", Data("public-key = \"abc\"\n".utf8), "not a CURVE key"),
            ("huge.key", Data(repeating: 0x41, count: 1 << 20), "bytes"),
        ]
        for (name, content, problem) in cases {
            let path = dir + "/" + name
            try content.write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: KeyError.self) { try CurveCertificate.load(path, secret: false) }
            #expect(error?.description.contains(path) == true && error?.description.contains(problem) == true, "\(String(describing: error))")
        }
        // A folder of only such files lets nobody in, and says so.
        #expect(throws: KeyError.self) { try AllowedKeys(directory: dir) }
    }

    @Test func theEndpointsThatStayOnThisHost() {
        for local in ["tcp://127.0.0.1:5555", "tcp://127.0.0.2:*", "tcp://localhost:1", "tcp://[::1]:5", "ipc:///tmp/x", "inproc://a",
                      "tcp://10.0.0.1:5;127.0.0.1:5555"] {
            #expect(EndpointPolicy.isLocal(local), "\(local)")
        }
        for remote in ["tcp://*:5556", "tcp://0.0.0.0:5556", "tcp://10.1.2.3:5556", "tcp://eth0:5556", "tcp://cluster.example:1",
                       "tcp://127.0.0.1.example:1", "tcp://[::]:5556", "tcp://128.0.0.1:1", "udp://127.0.0.1:1"] {
            #expect(!EndpointPolicy.isLocal(remote), "\(remote)")
        }
    }

    @Test func aSessionWithAPlaintextEndpointBeyondLoopbackIsRefused() throws {
        var o = StreamOptions()
        o.control = "tcp://*:5556"
        let problems = o.problems()
        #expect(problems.contains { $0.contains("tcp://*:5556") && $0.contains("keys generate") && $0.contains("--curve-clients") }, "\(problems)")
        o.control = "tcp://127.0.0.1:5556"
        o.connect = "tcp://10.0.0.2:5555"
        #expect(o.problems().contains { $0.contains("tcp://10.0.0.2:5555") && $0.contains("--detector-key") })
        o.connect = "tcp://127.0.0.1:5555"
        #expect(o.problems().isEmpty)
        o.security.clientsDirectory = "/tmp"
        #expect(o.problems().contains { $0.contains("--curve-secret") })
    }

    /// A REP server under CURVE with the ZAP handler, and three clients: a
    /// listed key gets answers (with its key as the message's User-Id), an
    /// unlisted key and a client without CURVE get nothing, and the refusal
    /// is logged with the key's id. A key added to the folder later gets in.
    @Test func onlyListedKeysGetThrough() throws {
        let dir = try folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let serverFiles = try CurveCertificate.generate(name: "session").write(to: dir + "/server")
        let alice = try CurveCertificate.generate(name: "alice")
        _ = try alice.write(to: dir + "/alice")
        let mallory = try CurveCertificate.generate(name: "mallory")
        _ = try mallory.write(to: dir + "/mallory")
        try FileManager.default.createDirectory(atPath: dir + "/clients", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/alice/alice.key", toPath: dir + "/clients/alice.key")

        let lines = LockedLines()
        let context = try ZMQContext()
        let server = try CurveServer(context: context, secretFile: serverFiles.secretFile, clientsDirectory: dir + "/clients") { lines.append($0) }
        defer { server.stop() }
        let rep = try ZMQSocket(context, .rep)
        try server.secure(rep)
        let endpoint = try rep.bind("tcp://127.0.0.1:*")
        let users = LockedLines()
        let serving = Thread {
            while let parts = try? rep.receive(timeoutMilliseconds: 4000) {
                users.append(parts[0].property("User-Id") ?? "none")
                try? rep.send(bytes: [parts[0].bytes])
            }
        }
        serving.start()

        let clientContext = try ZMQContext()
        func ask(_ keys: CurveCertificate?) throws -> String? {
            let req = try ZMQSocket(clientContext, .req)
            defer { req.close() }
            if let keys { try req.setCurveClient(serverKey: server.certificate.publicKey, publicKey: keys.publicKey, secretKey: keys.secretKey!) }
            try req.connect(endpoint)
            try req.send(bytes: [Array("hello".utf8)])
            return try req.receive(timeoutMilliseconds: 1500)?.first?.string
        }
        #expect(try ask(alice) == "hello")
        #expect(try ask(mallory) == nil)
        #expect(try ask(nil) == nil)
        #expect(users.all == [alice.publicKey])
        #expect(lines.all.contains { $0.contains("refused") && $0.contains(CurveCertificate.keyID(mallory.publicKey)) }, "\(lines.all)")
        #expect(server.authenticator.refused >= 1)
        // Withdrawn and granted without a restart: the folder is read again when it changes.
        Thread.sleep(forTimeInterval: 0.05)
        try FileManager.default.copyItem(atPath: dir + "/mallory/mallory.key", toPath: dir + "/clients/mallory.key")
        #expect(try ask(mallory) == "hello")
        #expect(users.all.last == mallory.publicKey)
    }
}

final class LockedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
