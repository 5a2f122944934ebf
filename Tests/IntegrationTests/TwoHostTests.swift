import Foundation
import SwiftHDF5
import Testing

/// The beamline and the cluster as two hosts (network namespaces joined by a
/// veth pair, Tests/Remote/two_hosts.sh): with keys a scan streams across,
/// is written whole and the viewer shows it; strangers are refused and the
/// session goes on; plaintext beyond loopback is refused at start; and a
/// capture of the wire holds no readable frame header.
@Suite(.serialized) struct TwoHostTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Remote/two_hosts.sh").path
    static var possible: Bool {
        getuid() == 0 && ["/usr/sbin/ip", "/usr/bin/tcpdump", "/usr/bin/ping", "/usr/bin/curl", "/usr/bin/openssl"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        } && CurveSessionTests.pyzmq && MPIRunner.mpirun != nil
            // A container without the right to make network namespaces cannot host the two.
            && (try? MPIRunner.execute("/usr/bin/unshare", ["--net", "true"]).status) == 0
    }
    static let checks = ["link", "plaintext-refused", "session-started", "viewer-token", "scan-done", "strangers-refused",
                         "refusal-logged", "non-operator-refused", "session-untouched", "viewer-needs-token", "operator-shutdown",
                         "capture-saw-curve", "no-plaintext-header"]

    @Test(.enabled(if: Self.possible, "needs root with the right to make network namespaces, iproute2, tcpdump, ping, curl, openssl, python3-zmq and mpirun (scripts/test.sh installs them)"))
    func aScanCrossesFromTheBeamlineToTheClusterOverCurveOnly() throws {
        let dir = NSTemporaryDirectory() + "ns-two-hosts-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ViewerTests.certificate(in: dir + "/tls")
        let launcher = try #require(MPIRunner.mpirun)
        let run = try MPIRunner.execute("/bin/bash", [Self.script, MPIRunner.executable, RawToCXITests.rawScan, dir, launcher], timeout: 600)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let context = "\(run.stdout)\n\(run.stderr)"
        for name in Self.checks {
            let line = lines.first { $0.hasPrefix("CHECK \(name) ") }
            #expect(line == "CHECK \(name) ok", "\(name): \(line ?? "not reached")\n\(context)")
        }
        #expect(lines.last == "DONE", "\(context)")

        let file = try HDF5File(path: dir + "/scans/scan-1.cxi", mode: .readOnly)
        let text = try file.readString("/entry_1/image_1/process_1/ns_stream_report")
        try file.close()
        let report = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let frames = try #require(report["frames"] as? Int), darks = try #require(report["darks"] as? Int)
        #expect(frames > 0 && report["placed"] as? Int == frames && report["received"] as? Int == frames + darks, "\(report)")

        // What the viewer on the beamline served, to the cluster's side, with its token.
        #expect(lines.contains("VIEWER_METRICS_HTTP 200") && lines.contains("VIEWER_STATS_HTTP 200"), "\(context)")
        let metrics = try String(contentsOfFile: dir + "/metrics.txt", encoding: .utf8)
        #expect(Exposition.value(metrics, "ns_frames_placed_total") == Double(frames), "\(metrics)")
        #expect(Exposition.value(metrics, "ns_viewer_session_up") == 1, "\(metrics)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/stats.json"))) as? [String: Any])
        #expect((stats["images_posted"] as? Int ?? 0) > 0, "the viewer passed on no picture of the scan: \(stats)")
        // Nothing of the test's network is left behind.
        let left = try MPIRunner.execute("/usr/sbin/ip", ["netns", "list"])
        #expect(!left.stdout.contains("nsbl") && !left.stdout.contains("nscl"), "\(left.stdout)")
    }
}
