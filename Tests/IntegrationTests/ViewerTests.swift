import CXI
import Foundation
import SwiftHDF5
import SwiftZMQ
import Testing

/// The web front-end in a real browser: headless Chromium driven through
/// WebDriver (Tests/Browser/viewer_check.py) against a live 2-rank session
/// started with `--view`, and against a viewer whose session is not there.
@Suite(.serialized, .enabled(if: Browser.ready, "needs chromium, chromium-driver and Python selenium: bash scripts/install-deps.sh"))
struct ViewerTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Browser/viewer_check.py").path
    static let screenshots = NSTemporaryDirectory() + "ns-viewer-screenshots"

    /// The check script's JSON line, after it exits 0.
    /// `server`: the process serving the page, whose state and output a failure reports.
    func check(_ arguments: [String], server: BackgroundProcess) throws -> [String: Any] {
        let run = try MPIRunner.execute("/usr/bin/python3", [Self.script] + arguments, timeout: 300)
        let line = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        try #require(run.status == 0, """
            the browser check failed:\n\(run.stdout)\n\(String(run.stderr.suffix(3000)))
            the server \(server.process.isRunning ? "still runs" : "exited with \(server.process.terminationStatus)"):
            \(String(server.output.string.suffix(3000)))
            """)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(run.stdout)")
    }

    @Test func thePageShowsALiveScanAndSteersIt() throws {
        let hostile = try HostileStreamTests(), feed = hostile.feed
        let s = try hostile.session(["--view", "127.0.0.1:0", "--publish-every", "2"])
        let url = try #require(s.process.await(#"view: http://127\.0\.0\.1:[0-9]+/"#).map { String($0.dropFirst("view: ".count)) },
                               "\(s.process.output.string)")
        // A final phase that lasts until the page aborts it.
        #expect(try feed.ask(s.control, #"{"command": "set", "final_iterations": 1000000}"#)["ok"] as? Bool == true)
        try hostile.scan("one")
        let frames = feed.scan.scan.frames
        let seen = try check(["live", url, Self.screenshots, "\(frames)"], server: s.process)
        print("viewer check: \(seen)")
        // The session says what the page did: the set applied, the scan aborted and not written.
        #expect(s.process.await("publish every 1", timeout: 10) != nil, "\(s.process.output.string)")
        #expect(s.process.await("scan one aborted", timeout: 10) != nil, "\(s.process.output.string)")
        #expect(!FileManager.default.fileExists(atPath: s.dir + "/one.cxi"))
        #expect((seen["refusal"] as? String)?.contains("out of range") == true, "\(seen)")
        let stats = try #require(seen["stats"] as? [String: Any])
        #expect((stats["draws"] as? Int ?? 0) > 0 && stats["malformed"] as? Int == 0, "\(stats)")
        // The viewer ends with the session that started it.
        let viewerPID = try #require(Self.viewerPID(url: url))
        try hostile.end(s)
        var gone = false
        for _ in 0..<100 where !gone { gone = kill(viewerPID, 0) != 0; usleep(100_000) }
        #expect(gone, "the viewer \(viewerPID) outlived its session")
    }

    @Test func aSimulatedScanStartedFromThePageIsWritten() throws {
        // A free port for the detector, where the page's simulator binds.
        let context = try ZMQContext()
        let probe = try ZMQSocket(context, .pull)
        let detector = try probe.bind("tcp://127.0.0.1:*")
        probe.close()
        let dir = NSTemporaryDirectory() + "ns-viewer-sim-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, ["-n", "2", MPIRunner.executable, "stream", "--connect", detector, "-o", dir,
                                                      "--iterations", "3", "--final-seconds", "0", "--scans", "1",
                                                      "--status-interval", "0.2", "--view", "127.0.0.1:0"])
        let url = try #require(stream.await(#"view: http://127\.0\.0\.1:[0-9]+/"#).map { String($0.dropFirst("view: ".count)) },
                               "\(stream.output.string)")
        let seen = try check(["simulate", url, Self.screenshots], server: stream)
        #expect((seen["refusal"] as? String)?.contains("scan: '6x6; rm -rf /' is not RxC") == true, "\(seen)")
        #expect(stream.finish(timeout: 120) == 0, "\(stream.output.string)")
        let done = try #require(stream.output.string.firstMatch(of: /scan (sim-[0-9]+) done: .*36 of 36 placed/), "\(stream.output.string)")
        #expect(FileManager.default.fileExists(atPath: dir + "/\(done.1).cxi"))
    }

    @Test func aSessionThatIsNotThereIsSaidOnThePage() throws {
        // Two ports nothing listens on.
        let context = try ZMQContext()
        let a = try ZMQSocket(context, .rep), b = try ZMQSocket(context, .rep)
        let pub = try a.bind("tcp://127.0.0.1:*"), control = try b.bind("tcp://127.0.0.1:*")
        a.close()
        b.close()
        let viewer = try BackgroundProcess(MPIRunner.executable, ["view", "--session", "\(pub),\(control)", "--http", "127.0.0.1:0", "--silence", "1"])
        let url = try #require(viewer.await(#"view: http://127\.0\.0\.1:[0-9]+/"#).map { String($0.dropFirst("view: ".count)) },
                               "\(viewer.output.string)")
        let seen = try check(["unreachable", url, Self.screenshots], server: viewer)
        #expect((seen["banner"] as? String)?.contains("ns-mpirun view --session \(pub),\(control)") == true, "\(seen)")
        viewer.process.terminate()
        #expect(viewer.finish(timeout: 20) == 0, "\(viewer.output.string)")
    }

    @Test func theFilesPageShowsAReconstructionAndAScan() throws {
        let dir = NSTemporaryDirectory() + "ns-viewer-files-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/recon", withIntermediateDirectories: true)
        let made = try MPIRunner.run(ranks: nil, ["simulate", "-o", dir + "/scan.cxi", "--scan", "spiral:60", "--seed", "5"])
        try #require(made.status == 0, "\(made.stderr)")
        let solved = try MPIRunner.run(ranks: 2, ["recon", dir + "/scan.cxi", "-o", dir + "/recon/rec.cxi", "--iterations", "4"])
        try #require(solved.status == 0, "\(solved.stderr)")
        // Served as beyond loopback: HTTPS, and a token the page's first address sets as a cookie.
        let tls = try Self.certificate(in: dir + "/tls")
        let viewer = try BackgroundProcess(MPIRunner.executable, ["view", "--files", dir, "--http", "127.0.0.1:0",
                                                                  "--tls-cert", tls.cert, "--tls-key", tls.key, "--token-file", tls.token])
        defer { viewer.process.terminate(); _ = viewer.finish(timeout: 20) }
        let url = try #require(viewer.await(#"view: https://127\.0\.0\.1:[0-9]+/\?token=[0-9a-f]+"#).map { String($0.dropFirst("view: ".count)) },
                               "\(viewer.output.string)")
        let frame = 5
        let seen = try check(["files", url, Self.screenshots, "recon/rec.cxi", "scan.cxi", "\(frame)"], server: viewer)
        print("files check: \(seen)")

        // What the page drew is what the files hold.
        let reconstruction = try #require(seen["reconstruction"] as? [String: Any])
        #expect(reconstruction["positionsDrawn"] as? Int == 60 && reconstruction["tilesDrawn"] as? Int == 2, "\(reconstruction)")
        let rec = try HDF5File(path: dir + "/recon/rec.cxi", mode: .readOnly)
        let fourier = try rec.read("/entry_1/image_1/process_1/ns_fourier_error", as: Double.self)
        let nrmse = try rec.read("/entry_1/image_1/process_1/ns_truth_nrmse", as: Double.self).filter(\.isFinite)
        try rec.close()
        #expect(fourier.count == 4 && !nrmse.isEmpty)
        #expect(reconstruction["errorPoints"] as? Int == fourier.count + nrmse.count, "\(reconstruction)")
        #expect((seen["metadata"] as? String)?.contains("recon/rec.cxi --iterations 4") == true, "\(seen)")

        let scan = try #require(seen["scan"] as? [String: Any])
        let reader = try CXIReader(path: dir + "/scan.cxi")
        let pixels = reader.scan.frameHeight * reader.scan.frameWidth
        let all = try reader.readFrames(first: 0, count: reader.frameCount)
        let frameSum = all[(frame * pixels)..<((frame + 1) * pixels)].reduce(0.0) { $0 + Double($1) }
        let total = all.reduce(0.0) { $0 + Double($1) }
        #expect(scan["framePixels"] as? Int == pixels && scan["photonPixels"] as? Int == pixels * reader.frameCount, "\(scan)")
        #expect(abs((scan["frameTotal"] as? Double ?? 0) - frameSum) <= 1e-6 * frameSum, "\(scan) vs \(frameSum)")
        #expect(abs((scan["photonTotal"] as? Double ?? 0) - total) <= 1e-6 * total, "\(scan) vs \(total)")
        // Every positive count on the frame lies in a drawn bin (none under 10^-3 or over 10^7 photons here).
        let positive = all[(frame * pixels)..<((frame + 1) * pixels)].filter { $0 > 0 }.count
        #expect(scan["frameCounted"] as? Int == positive, "\(scan)")
        #expect((seen["refusal"] as? String)?.contains("without '..'") == true, "\(seen)")
    }

    /// A self-signed certificate for 127.0.0.1, its key, and a token file (mode 0600).
    static func certificate(in dir: String) throws -> (cert: String, key: String, token: String) {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let made = try MPIRunner.execute("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-keyout", dir + "/page.key", "-out", dir + "/page.crt", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        try #require(made.status == 0, "\(made.stderr)")
        let token = dir + "/token"
        try "c0ffee0123456789abcdef\n".write(toFile: token, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: token)
        return (dir + "/page.crt", dir + "/page.key", token)
    }

    /// With a token every request needs it (a cookie set by the printed
    /// address, or a bearer header); a cookie-borne change needs this page's
    /// Origin, and no request from another site's page is served.
    @Test(.enabled(if: ["/usr/bin/curl", "/usr/bin/openssl"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) },
                   "needs curl and openssl (scripts/test.sh installs them)"))
    func aViewerWithATokenServesItsHoldersOnly() throws {
        let dir = NSTemporaryDirectory() + "ns-viewer-token-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tls = try Self.certificate(in: dir + "/tls")
        let viewer = try BackgroundProcess(MPIRunner.executable, ["view", "--files", dir, "--session", "tcp://127.0.0.1:1,tcp://127.0.0.1:2",
                                                                  "--http", "127.0.0.1:0", "--tls-cert", tls.cert, "--tls-key", tls.key,
                                                                  "--token-file", tls.token])
        defer { viewer.process.terminate(); _ = viewer.finish(timeout: 20) }
        let url = try #require(viewer.await(#"https://127\.0\.0\.1:[0-9]+/\?token=[0-9a-f]+"#), "\(viewer.output.string)")
        let base = String(url.prefix { $0 != "?" }), origin = String(base.dropLast())
        func curl(_ arguments: [String]) throws -> (code: Int, headers: String) {
            let run = try MPIRunner.execute("/usr/bin/curl", ["-sk", "-D", "-", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"] + arguments)
            return (Int(run.stdout.suffix(3)) ?? 0, run.stdout)
        }
        let cookie = ["-b", "ns_token=c0ffee0123456789abcdef"]
        let post = ["-H", "Content-Type: application/json", "-d", #"{"command": "status"}"#, base + "api/control"]
        #expect(try curl([base + "api/session"]).code == 401)
        #expect(try curl(["-H", "Authorization: Bearer c0ffee0123456789abcdeX", base + "api/session"]).code == 401)
        #expect(try curl(["-H", "Authorization: Bearer c0ffee0123456789abcdef", base + "api/session"]).code == 200)
        let opened = try curl([url])
        #expect(opened.code == 303 && opened.headers.contains("Location: /\r\n"), "\(opened.headers)")
        #expect(opened.headers.contains("Set-Cookie: ns_token=c0ffee0123456789abcdef") && opened.headers.contains("HttpOnly")
                && opened.headers.contains("Secure") && opened.headers.contains("SameSite=Strict"), "\(opened.headers)")
        #expect(try curl(cookie + [base + "api/session"]).code == 200)
        #expect(try curl(cookie + post).code == 403)
        #expect(try curl(cookie + ["-H", "Origin: https://evil.example"] + post).code == 403)
        #expect(try curl(cookie + ["-H", "Origin: https://evil.example", base + "api/session"]).code == 403)
        #expect(try curl(cookie + ["-H", "Origin: \(origin)"] + post).code == 200)
        // Plain HTTP gets no page from the HTTPS port.
        #expect(try curl([base.replacingOccurrences(of: "https://", with: "http://") + "api/session"]).code != 200)
        let open = try FileManager.default.attributesOfItem(atPath: tls.token)[.posixPermissions] as? Int
        #expect(open == 0o600)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: tls.token)
        let refused = try MPIRunner.run(ranks: nil, ["view", "--files", dir, "--http", "127.0.0.1:0", "--token-file", tls.token])
        #expect(refused.status != 0 && refused.stderr.contains("chmod 600"), "\(refused.stderr)")
    }

    @Test func badViewerOptionsAreRefusedByName() throws {
        let remote = try MPIRunner.run(ranks: nil, ["view", "--session", "tcp://127.0.0.1:1,tcp://127.0.0.1:2", "--http", "0.0.0.0:8080"])
        #expect(remote.status != 0 && remote.stderr.contains("loopback only") && remote.stderr.contains("ssh -L"), "\(remote.stderr)")
        let one = try MPIRunner.run(ranks: nil, ["view", "--session", "tcp://127.0.0.1:1"])
        #expect(one.status != 0 && one.stderr.contains("--session takes the publish and control endpoints"), "\(one.stderr)")
        let neither = try MPIRunner.run(ranks: nil, ["view"])
        #expect(neither.status != 0 && neither.stderr.contains("--session PUB,CONTROL") && neither.stderr.contains("--files DIR"), "\(neither.stderr)")
        let folder = try MPIRunner.run(ranks: nil, ["view", "--files", "/no/such/folder"])
        #expect(folder.status != 0 && folder.stderr.contains("--files /no/such/folder: no such directory"), "\(folder.stderr)")
        let stream = try MPIRunner.run(ranks: nil, ["stream", "--view", "example.org:80"])
        #expect(stream.status != 0 && stream.stderr.contains("loopback only"), "\(stream.stderr)")
    }

    /// The viewer process serving `url`, found by its listening port.
    static func viewerPID(url: String) -> Int32? {
        guard let port = url.split(separator: ":").last?.filter(\.isNumber) else { return nil }
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for p in procs {
            guard let pid = Int32(p), let cmd = try? String(contentsOfFile: "/proc/\(p)/cmdline", encoding: .utf8) else { continue }
            let args = cmd.split(separator: "\0").map(String.init)
            if args.contains("view") && args.contains("--parent") && args.contains(where: { $0.hasSuffix(":0") || $0.hasSuffix(":" + port) }) {
                return pid
            }
        }
        return nil
    }
}

enum Browser {
    static var ready: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
            && (try? MPIRunner.execute("/usr/bin/python3", ["-c", "import selenium"]).status) == 0
    }
}
