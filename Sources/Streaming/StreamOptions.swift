import Engines
import Foundation
import Ingest
import Recon
import RemoteAccess
import WebAccess

/// Everything a live session is told at start; `set` changes some of it later.
public struct StreamOptions: Sendable {
    /// The detector's endpoint (its PUSH socket); rank 0 connects a PULL socket.
    public var connect = "tcp://127.0.0.1:5555"
    /// Control port (REP) and status/preview port (PUB) to bind on rank 0; nil: none.
    public var control: String? = nil
    public var publish: String? = nil
    /// Each scan is written to DIR/SCAN_ID.cxi.
    public var outputDirectory = "."
    public var engine = EngineOptions()
    /// Iterations after the last frame of a scan, and the most seconds they
    /// may take (0: no limit): the solver has iterated while the scan
    /// arrived, so these only take in the last frames. With an engine
    /// sequence (`engine.engines`) the final phase is that sequence instead.
    public var finalIterations = 100
    public var finalSeconds = 8.0
    /// The solver starts once this fraction of the scan's frames is placed.
    public var solveAfter = 0.1
    public var preprocess = PreprocessOptions()
    public var firstProbe = FirstProbeSource.optics
    public var probeDefocus = 0.0
    public var tiles: (rows: Int, columns: Int)? = nil
    /// Raw frames a rank may hold waiting to be cleaned (its credit).
    public var credit = 8
    /// Frames a rank cleans between two iterations.
    public var cleanPerRound = 8
    /// Data frames used to find the diffraction centre (when not given).
    public var centringFrames = 8
    /// A scan whose sender has been silent this long ends with what arrived.
    public var frameTimeout = 10.0
    /// The largest message part rank 0 reads, in MiB; a sender of a larger
    /// one is disconnected by ZeroMQ before it is read in (it connects again).
    public var maxMessageMegabytes = 1024
    /// Frames rank 0 holds in memory beyond ZeroMQ's queue, and their bytes.
    public var backlogFrames = 4096
    public var backlogBytes = 2 << 30
    /// Publish the reconstruction every k iterations (0: only at the end of a scan).
    public var publishEvery = 10
    /// Largest side of a published object.
    public var publishSide = 256
    /// Seconds between status messages on the publish port.
    public var statusInterval = 1.0
    /// Also write each scan's clean frames (and mask) into its file, so it can be reconstructed again offline.
    public var saveClean = false
    /// Also write each raw scan as it arrives to DIR/SCAN_ID-raw.cxi, in the layout `raw2cxi` reads.
    public var saveRaw = false
    /// A round (one iteration) taking longer than this is reported as a stall on the status port and in the log.
    public var heartbeatTimeout = 60.0
    /// Stop after this many scans (nil: until `shutdown`).
    public var scans: Int? = nil
    /// The memory a scan's solve may take on each rank, in GB (nil: 80% of the host's memory shared by its ranks).
    public var maxMemoryGB: Double? = nil
    /// A simulated scan whose truth each scan's solve is compared with (NRMSE), where the grids match.
    public var truth: String? = nil
    /// CURVE keys for endpoints beyond loopback (docs/security.md).
    public var security = Security()
    /// Prometheus's /metrics served by rank 0 (none when `address` is nil).
    public var metrics = Metrics()
    public var command = ""
    public var version = ""
    public init() {}

    /// Iterations of a scan's final phase: the sequence's, or `finalIterations`.
    public var finalLength: Int { engine.engines.isEmpty ? finalIterations : engine.totalIterations }

    /// The engines a scan may run, in turn: `algorithm` while frames arrive, then the sequence.
    public var engineNames: [String] { [engine.algorithm] + engine.engines.map(\.name) }

    public func problems() -> [String] {
        var out = engine.problems() + preprocess.problems()
        if finalIterations < 0 { out.append("final iterations must be at least 0, got \(finalIterations)") }
        if !(finalSeconds >= 0) { out.append("final seconds must be at least 0, got \(finalSeconds)") }
        if !(solveAfter >= 0 && solveAfter <= 1) { out.append("solve-after must be a fraction in 0...1, got \(solveAfter)") }
        if credit < 1 { out.append("credit must be at least 1, got \(credit)") }
        if cleanPerRound < 1 { out.append("clean-per-round must be at least 1, got \(cleanPerRound)") }
        if centringFrames < 1 { out.append("centring frames must be at least 1, got \(centringFrames)") }
        if !(frameTimeout > 0) { out.append("frame timeout must be positive, got \(frameTimeout)") }
        if maxMessageMegabytes < 1 { out.append("the message limit must be at least 1 MiB, got \(maxMessageMegabytes)") }
        if backlogFrames < 1 || backlogBytes < 1 { out.append("the backlog must hold at least one frame") }
        if !(heartbeatTimeout > 0) { out.append("heartbeat timeout must be positive, got \(heartbeatTimeout)") }
        if !(statusInterval > 0) { out.append("status interval must be positive, got \(statusInterval)") }
        if publishEvery < 0 { out.append("publish-every must be at least 0, got \(publishEvery)") }
        if let scans, scans < 1 { out.append("scans must be at least 1, got \(scans)") }
        if let truth, !FileManager.default.isReadableFile(atPath: truth) { out.append("truth: \(truth) is not a readable file") }
        for (name, endpoint) in [("connect", connect), ("control", control ?? "tcp://"), ("publish", publish ?? "tcp://")]
        where !(endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://")) {
            out.append("\(name) must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got '\(endpoint)'")
        }
        return out + security.problems(connect: connect, bound: [("control", control), ("publish", publish)]) + metrics.problems()
    }

    /// Where rank 0 serves /metrics for Prometheus: HOST:PORT, on loopback
    /// unless given a token file and a certificate (HTTPS, as the viewer).
    public struct Metrics: Sendable {
        public var address: String? = nil
        public var tokenFile: String? = nil
        public var certificateFile: String? = nil
        public var keyFile: String? = nil
        public init() {}

        public var listen: ListenAddress? { address.flatMap { try? ListenAddress($0, option: "--metrics") } }

        func problems() -> [String] {
            guard let address else {
                return tokenFile != nil || certificateFile != nil || keyFile != nil
                    ? ["--metrics-token-file, --metrics-tls-cert and --metrics-tls-key are for --metrics HOST:PORT"] : []
            }
            let listen: ListenAddress
            do { listen = try ListenAddress(address, option: "--metrics") } catch { return ["\(error)"] }
            if (certificateFile == nil) != (keyFile == nil) { return ["--metrics-tls-cert and --metrics-tls-key go together"] }
            if !EndpointPolicy.isLoopbackHost(listen.host) && (tokenFile == nil || certificateFile == nil) {
                return ["--metrics \(address): beyond loopback the metrics are served over HTTPS to holders of a token: give --metrics-token-file FILE, --metrics-tls-cert FILE and --metrics-tls-key FILE (docs/security.md)"]
            }
            return []
        }
    }

    /// The session's CURVE keys: its own pair (a NAME.key_secret file), the
    /// clients its control and publish ports let in, the operators among
    /// them who may change anything (abort, set, shutdown), and the
    /// detector's public key where the detector's endpoint is secured.
    public struct Security: Sendable {
        public var secretFile: String? = nil
        public var clientsDirectory: String? = nil
        public var operatorsDirectory: String? = nil
        public var detectorKeyFile: String? = nil
        public init() {}

        /// Whether the session's own ports are CURVE servers.
        public var servesCurve: Bool { secretFile != nil && clientsDirectory != nil }

        /// Plaintext beyond loopback, and keys given without what they need.
        func problems(connect: String, bound: [(String, String?)]) -> [String] {
            var out: [String] = []
            if detectorKeyFile != nil && secretFile == nil {
                out.append("--detector-key needs the session's own key pair: give --curve-secret FILE")
            }
            if clientsDirectory != nil && secretFile == nil {
                out.append("--curve-clients needs the session's own key pair: give --curve-secret FILE")
            }
            if operatorsDirectory != nil && clientsDirectory == nil {
                out.append("--curve-operators needs --curve-clients (operators are clients who may also change the session)")
            }
            if secretFile != nil && clientsDirectory == nil && detectorKeyFile == nil {
                out.append("--curve-secret alone secures nothing: give --curve-clients DIR (for the control and publish ports) or --detector-key FILE (for the detector's)")
            }
            if detectorKeyFile == nil && !EndpointPolicy.isLocal(connect) {
                out.append(EndpointPolicy.plaintextRefusal("the detector's endpoint", connect,
                                                           needs: "--detector-key FILE (the detector's public key) and --curve-secret FILE"))
            }
            for case let (name, endpoint?) in bound where !servesCurve && !EndpointPolicy.isLocal(endpoint) {
                out.append(EndpointPolicy.plaintextRefusal("the \(name) endpoint", endpoint,
                                                           needs: "--curve-secret FILE and --curve-clients DIR"))
            }
            return out
        }
    }

    /// The longest file-name base made from a scan id.
    public static let maxFileBase = 96

    /// A scan id as a file-name base: ASCII letters, digits, '.', '-' and
    /// '_' (anything else becomes '_'), no leading or trailing dots, at most
    /// `maxFileBase` characters.
    public static func fileBase(for scanID: String) -> String {
        let kept = scanID.map { c -> Character in c.isASCII && (c.isLetter || c.isNumber || "._-".contains(c)) ? c : "_" }
        let name = String(String(kept).trimmingCharacters(in: CharacterSet(charactersIn: ".")).prefix(maxFileBase))
        return name.isEmpty ? "scan" : name
    }

    /// The scan's file-name base in `directory`: `fileBase`, or that with
    /// "-2", "-3", ... when a scan file or raw copy of the base already
    /// exists or the base went to an earlier scan of this session, so two
    /// ids that map to one name (`a/b`, `a_b`) or an id sent twice never
    /// overwrite an earlier scan.
    public static func freeBase(for scanID: String, in directory: String, taken: Set<String>) -> String {
        let plain = fileBase(for: scanID)
        var base = plain, k = 1
        func used(_ b: String) -> Bool {
            taken.contains(b) || [b + ".cxi", b + "-raw.cxi"].contains {
                FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent($0))
            }
        }
        while used(base) {
            k += 1
            base = plain + "-\(k)"
        }
        return base
    }
}
