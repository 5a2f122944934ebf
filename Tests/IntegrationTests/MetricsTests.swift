import Foundation
import SwiftZMQ
import Testing

/// Prometheus's text format read back: the value of one sample, by its name and labels as written.
enum Exposition {
    static func value(_ text: String, _ sample: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1).split(separator: " ").first ?? "")
        }
        return nil
    }

    /// GET with curl; the body, and the HTTP status.
    static func fetch(_ url: String, token: String? = nil) throws -> (body: String, status: Int) {
        var arguments = ["-sk", "-w", "\n%{http_code}", url]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        let run = try MPIRunner.execute("/usr/bin/curl", arguments, timeout: 30)
        let text = run.stdout
        let cut = text.lastIndex(of: "\n") ?? text.startIndex
        return (String(text[..<cut]), Int(text[cut...].trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1)
    }
}

/// A real Prometheus (Debian's package) scrapes a live session's --metrics and
/// the viewer's /metrics (over HTTPS with its token) while a scan streams from
/// the virtual detector; its query API then gives the frames the detector sent.
@Suite(.serialized) struct MetricsTests {
    static let prometheus = "/usr/bin/prometheus"
    static var tools: Bool { [prometheus, "/usr/bin/curl", "/usr/bin/openssl"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) } }

    /// A loopback port free now (Prometheus cannot report a port it chose).
    static func freePort() throws -> Int {
        let run = try MPIRunner.execute("/usr/bin/python3", ["-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        return try #require(Int(run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// One instant query's single value, from Prometheus's HTTP API.
    static func query(_ port: Int, _ expression: String) throws -> Double? {
        let run = try MPIRunner.execute("/usr/bin/curl", ["-s", "--get", "http://127.0.0.1:\(port)/api/v1/query", "--data-urlencode", "query=\(expression)"],
                                        timeout: 30)
        guard let o = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
              let data = o["data"] as? [String: Any], let result = data["result"] as? [[String: Any]], result.count == 1,
              let value = result[0]["value"] as? [Any], value.count == 2, let text = value[1] as? String else { return nil }
        return Double(text)
    }

    static func shutdown(_ endpoint: String) throws -> Bool {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context, .req)
        defer { socket.close() }
        try socket.setLinger(milliseconds: 0)
        try socket.connect(endpoint)
        try socket.send(bytes: [Array(#"{"command": "shutdown"}"#.utf8)])
        return try socket.receive(timeoutMilliseconds: 10_000) != nil
    }

    @Test(.enabled(if: Self.tools, "needs Debian's prometheus, curl and openssl (scripts/test.sh installs them)"))
    func prometheusScrapesTheSessionAndTheViewer() throws {
        let dir = NSTemporaryDirectory() + "ns-metrics-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tls = try ViewerTests.certificate(in: dir + "/tls")

        let sim = try BackgroundProcess(MPIRunner.executable, ["fccd-sim", "--input", RawToCXITests.rawScan, "--bind", "tcp://127.0.0.1:*",
                                                               "--rate", "200", "--linger", "3"])
        defer { sim.finish(timeout: 30) }
        let detector = try #require(sim.await(StreamTests.endpointPattern), "\(sim.output.string)")
        let sending = try #require(sim.await("sending [0-9]+ dark and [0-9]+ data"), "\(sim.output.string)")
        let numbers = sending.split(separator: " ").compactMap { Int($0) }
        let (darks, frames) = (numbers[0], numbers[1])

        let launcher = try #require(MPIRunner.mpirun)
        let stream = try BackgroundProcess(launcher, [
            "-n", "2", MPIRunner.executable, "stream", "--connect", detector, "-o", dir + "/scans", "--log-dir", "none",
            "--control", "tcp://127.0.0.1:*", "--publish", "tcp://127.0.0.1:*", "--iterations", "5", "--status-interval", "0.2",
            "--metrics", "127.0.0.1:0", "--metrics-token-file", tls.token])
        defer { if stream.process.isRunning { stream.process.terminate(); stream.finish(timeout: 60) } }
        let served = try #require(stream.await(#"metrics for Prometheus on http://127\.0\.0\.1:[0-9]+/metrics"#), "\(stream.output.string)")
        let metricsURL = String(served.split(separator: " ").last!)
        // With a token (optional on loopback) a scrape without it is refused.
        let anonymous = try Exposition.fetch(metricsURL)
        #expect(anonymous.status == 401 && anonymous.body.contains("token"), "\(anonymous)")
        // A second session cannot take the same port, and says which.
        let taken = try MPIRunner.run(ranks: nil, ["stream", "--connect", "tcp://127.0.0.1:1", "-o", dir + "/second", "--log-dir", "none",
                                                   "--scans", "1", "--metrics", String(metricsURL.dropFirst("http://".count).dropLast("/metrics".count))],
                                      timeout: 120)
        #expect(taken.status != 0 && taken.stderr.contains("cannot serve metrics on 127.0.0.1:"), "\(taken.stderr)")
        let control = String(try #require(stream.await("control " + StreamTests.endpointPattern)).dropFirst("control ".count))
        let publish = String(try #require(stream.await("publishing on " + StreamTests.endpointPattern)).dropFirst("publishing on ".count))

        let viewer = try BackgroundProcess(MPIRunner.executable, ["view", "--session", "\(publish),\(control)", "--http", "127.0.0.1:0",
                                                                  "--tls-cert", tls.cert, "--tls-key", tls.key, "--token-file", tls.token])
        defer { viewer.process.terminate(); viewer.finish(timeout: 20) }
        let page = try #require(viewer.await(#"https://127\.0\.0\.1:[0-9]+/"#), "\(viewer.output.string)")
        let viewerTarget = String(page.dropFirst("https://".count).dropLast())
        #expect(try Exposition.fetch("https://\(viewerTarget)/metrics").status == 401, "the viewer's metrics without its token")

        let port = try Self.freePort()
        let sessionTarget = String(metricsURL.dropFirst("http://".count).dropLast("/metrics".count))
        let config = """
            global:
              scrape_interval: 1s
              scrape_timeout: 900ms
            scrape_configs:
              - job_name: session
                authorization: {credentials_file: "\(tls.token)"}
                static_configs: [{targets: ["\(sessionTarget)"]}]
              - job_name: viewer
                scheme: https
                tls_config: {ca_file: "\(tls.cert)"}
                authorization: {credentials_file: "\(tls.token)"}
                static_configs: [{targets: ["\(viewerTarget)"]}]

            """
        try config.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try BackgroundProcess(Self.prometheus, [
            "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/tsdb", "--web.listen-address=127.0.0.1:\(port)"])
        defer { prometheus.process.terminate(); prometheus.finish(timeout: 30) }
        try #require(prometheus.await("Server is ready to receive web requests", timeout: 60) != nil, "\(prometheus.output.string)")

        try #require(stream.await("scan scan-1 done", timeout: 180) != nil, "\(stream.output.string)")
        // Both targets report every frame the detector sent, darks included, once Prometheus has scraped them since.
        let expected = Double(darks + frames)
        var seen: [String: Double?] = [:]
        let deadline = Date().addingTimeInterval(60)
        repeat {
            for job in ["session", "viewer"] { seen[job] = try Self.query(port, #"ns_frames_received_total{job="\#(job)"}"#) }
            if seen.values.allSatisfy({ $0 == expected }) { break }
            usleep(500_000)
        } while Date() < deadline
        #expect(seen["session"] == expected && seen["viewer"] == expected, "\(seen), expected \(expected)\n\(prometheus.output.string)")
        #expect(try Self.query(port, #"ns_frames_placed_total{job="session"}"#) == Double(frames))
        #expect(try Self.query(port, #"ns_frame_latency_seconds_count{job="session"}"#) == Double(frames))
        #expect(try Self.query(port, #"sum(ns_frames_rejected_total{job="session"})"#) == 0)
        #expect(try Self.query(port, #"ns_scans_written_total{job="session"}"#) == 1)
        #expect(try Self.query(port, #"ns_viewer_session_up{job="viewer"}"#) == 1)
        #expect(try Self.query(port, #"count(ns_rank_heartbeat_age_seconds{job="session"} < 30)"#) == 2)
        #expect(try Self.query(port, #"ns_iterations_total{job="session"}"#).map { $0 >= 5 } == true)

        #expect(try Self.shutdown(control), "no reply to shutdown")
        #expect(stream.finish(timeout: 60) == 0, "\(stream.output.string)")
    }
}
