import Engines
import Foundation
import Logging
import Parameters
import Pipeline
import Recon
import RunLogs
import Streaming
import SwiftMPI

/// The live session as a stage: rank 0 of the stage's group receives the
/// detector's frames (the pipeline's `endpoints.detector`), every rank of
/// it cleans and solves, and each scan is written under the pipeline's
/// output directory (`output.save` adds "raw" and "clean" copies). Its
/// steps need collectives mid-scan (dark merging, centring, the solver's
/// halo exchange), so they run in the session's own rounds on the group.
public final class StreamStage: SourceStage {
    public static let description = StageDescription(
        type: "stream",
        summary: "A live session on the stage's ranks: frames received over ZeroMQ, cleaned, and reconstructed while the scan arrives (the stream command).",
        inputs: [],
        outputs: [],
        parameters: EngineOptions.parameters + PreprocessParameters.specs + StreamStage.sessionSpecs)

    static var sessionSpecs: [ParameterSpec] {
        let d = StreamOptions()
        return [
            ParameterSpec("final_seconds", .number(0...86_400), unit: "s", default: .number(d.finalSeconds),
                          doc: "the most seconds the iterations after the last frame may take (0: no limit)"),
            ParameterSpec("solve_after", .number(0...1), default: .number(d.solveAfter),
                          doc: "start the solver once this fraction of the scan's frames is placed"),
            ParameterSpec("tiles", .string, default: .string(""), doc: "tile grid \"RxC\" over the ranks (\"\": as square as the object allows)"),
        ] + FirstProbeParameters.specs("the first probe", of: "the scan's start") + [
            ParameterSpec("credit", .integer(1...65_536), unit: "frames", default: .integer(d.credit), doc: "raw frames a rank may hold waiting to be cleaned"),
            ParameterSpec("clean_per_round", .integer(1...65_536), unit: "frames", default: .integer(d.cleanPerRound),
                          doc: "frames a rank cleans between two iterations"),
            ParameterSpec("frame_timeout", .number(0.001...86_400), unit: "s", default: .number(d.frameTimeout),
                          doc: "end a scan with what arrived after this many silent seconds"),
            ParameterSpec("backlog", .integer(1...100_000_000), unit: "frames", default: .integer(d.backlogFrames),
                          doc: "frames rank 0 holds beyond ZeroMQ's queue before the sender is made to wait"),
            ParameterSpec("max_message_mb", .integer(1...65_536), unit: "MiB", default: .integer(d.maxMessageMegabytes),
                          doc: "the largest message part accepted from the detector (a larger one makes ZeroMQ drop the connection)"),
            ParameterSpec("publish_every", .integer(0...1_000_000), default: .integer(d.publishEvery),
                          doc: "publish the object and probe every k iterations (0: only at the end of a scan)"),
            ParameterSpec("status_interval", .number(0.01...3600), unit: "s", default: .number(d.statusInterval),
                          doc: "seconds between status messages on the publish port"),
            ParameterSpec("heartbeat_timeout", .number(0.1...86_400), unit: "s", default: .number(d.heartbeatTimeout),
                          doc: "report a stall when no round completes for this long"),
            ParameterSpec("scans", .integer(0...1_000_000), default: .integer(0), doc: "stop after this many scans (0: until 'shutdown' or SIGTERM)"),
            ParameterSpec("log_dir", .string, default: .string(""),
                          doc: "folder for one log file per rank (\"\": logs/ beside the scans; \"none\": no files)"),
            SolveParameters.maxMemory,
            ParameterSpec("truth", .string, default: .string(""),
                          doc: "a simulated scan (as `simulate` writes it, raw or clean) whose true object each scan's solve is compared with by NRMSE, where the object grids match (\"\": none)"),
            ParameterSpec("curve_secret", .string, default: .string(""),
                          doc: "the session's CURVE key pair, a NAME.key_secret file (`ns-mpirun keys generate`); needed for any endpoint beyond loopback (\"\": none)"),
            ParameterSpec("curve_clients", .string, default: .string(""),
                          doc: "a folder of clients' public keys (NAME.key) the control and publish ports let in; with curve_secret they serve CURVE only (\"\": plaintext, loopback only)"),
            ParameterSpec("curve_operators", .string, default: .string(""),
                          doc: "a folder of the public keys that may also abort, set and shut down (\"\": every listed client may)"),
            ParameterSpec("detector_key", .string, default: .string(""),
                          doc: "the detector's public key (NAME.key): connect to it with CURVE (\"\": plaintext, loopback only)"),
            ParameterSpec("metrics", .string, default: .string(""),
                          doc: "serve Prometheus's /metrics from rank 0 on HOST:PORT (loopback unless metrics_token and metrics_tls_cert are given; \"\": none)"),
            ParameterSpec("metrics_token", .string, default: .string(""),
                          doc: "a file (mode 0600) holding the token a scrape must send as Authorization: Bearer (\"\": none, loopback only)"),
            ParameterSpec("metrics_tls_cert", .string, default: .string(""), doc: "PEM certificate chain: /metrics over HTTPS (\"\": HTTP, loopback only)"),
            ParameterSpec("metrics_tls_key", .string, default: .string(""), doc: "PEM private key of metrics_tls_cert"),
        ]
    }

    /// The endpoint names a stream pipeline may give under `endpoints`.
    public static let endpointNames = ["detector", "control", "publish"]

    /// The session's options from resolved parameters and the pipeline's endpoints, saved products and folder.
    public static func options(_ p: ParameterSet, endpoints: [String: String], save: [SavedProduct],
                               outputDirectory: String) throws(ParameterProblems) -> StreamOptions {
        var o = StreamOptions()
        var problems: [String] = []
        do { o.engine = try EngineOptions(p) } catch { problems += error.problems }
        do { o.preprocess = try PreprocessParameters.options(p) } catch { problems += error.problems }
        do { o.tiles = try p.tileGrid("tiles") } catch { problems += error.problems }
        o.finalIterations = p.integer("iterations")
        o.finalSeconds = p.number("final_seconds")
        o.solveAfter = p.number("solve_after")
        o.probeDefocus = p.number("probe_defocus")
        o.firstProbe = FirstProbeParameters.source(p)
        o.credit = p.integer("credit")
        o.cleanPerRound = p.integer("clean_per_round")
        o.frameTimeout = p.number("frame_timeout")
        o.backlogFrames = p.integer("backlog")
        o.maxMessageMegabytes = p.integer("max_message_mb")
        o.publishEvery = p.integer("publish_every")
        o.statusInterval = p.number("status_interval")
        o.heartbeatTimeout = p.number("heartbeat_timeout")
        o.scans = p.givenInteger("scans")
        o.maxMemoryGB = p.givenNumber("max_memory_gb")
        o.truth = p.string("truth").isEmpty ? nil : p.string("truth")
        func path(_ key: String) -> String? { p.string(key).isEmpty ? nil : p.string(key) }
        o.security.secretFile = path("curve_secret")
        o.security.clientsDirectory = path("curve_clients")
        o.security.operatorsDirectory = path("curve_operators")
        o.security.detectorKeyFile = path("detector_key")
        o.metrics.address = path("metrics")
        o.metrics.tokenFile = path("metrics_token")
        o.metrics.certificateFile = path("metrics_tls_cert")
        o.metrics.keyFile = path("metrics_tls_key")
        o.connect = endpoints["detector"] ?? o.connect
        o.control = endpoints["control"]
        o.publish = endpoints["publish"]
        for name in endpoints.keys.sorted() where !endpointNames.contains(name) {
            let near = nearest(name, in: endpointNames).map { " (did you mean '\($0)'?)" } ?? ""
            problems.append("endpoints.\(name): not used by a live session\(near); it uses \(endpointNames.joined(separator: ", "))")
        }
        o.saveRaw = save.contains(.raw)
        o.saveClean = save.contains(.clean)
        o.outputDirectory = outputDirectory
        if problems.isEmpty { problems = o.problems() }
        guard problems.isEmpty else { throw ParameterProblems(problems) }
        return o
    }

    public static func problems(_ p: ParameterSet, in pipeline: PipelineSpec) -> [String] {
        do {
            _ = try options(p, endpoints: pipeline.endpoints, save: pipeline.save, outputDirectory: pipeline.outputDirectory)
            return []
        } catch {
            return error.problems
        }
    }

    let options: StreamOptions
    let logDirectory: String?
    let context: StageContext

    public init(parameters p: ParameterSet, context: StageContext) throws {
        self.context = context
        do {
            var o = try Self.options(p, endpoints: context.endpoints, save: context.save, outputDirectory: context.outputDirectory)
            o.command = "pipeline stage \(context.name) (stream)"
            options = o
        } catch {
            throw StageError(stage: context.name, problem: error.description)
        }
        logDirectory = Self.logDirectory(p.string("log_dir"), outputDirectory: options.outputDirectory, resolve: context.resolve)
    }

    public func produce(emit: (StageItem) throws -> Void) throws {
        try Self.runSession(try context.communicator(), options: options, logDirectory: logDirectory, echo: true,
                            label: "stream: stage '\(context.name)' on")
    }

    /// The folder for the ranks' log files from `log_dir`: every live
    /// session logs unless told not to, by default beside its scans.
    public static func logDirectory(_ value: String, outputDirectory: String, resolve: (String) -> String = { $0 }) -> String? {
        switch value {
        case "none": nil
        case "": (outputDirectory as NSString).appendingPathComponent("logs")
        default: resolve(value)
        }
    }

    /// A live session on every rank of `comm`, as the `stream` command and
    /// this stage run it: signals caught, one log file per rank (rank 0's
    /// lines echoed when `echo`), until the session ends.
    /// `ready` runs on rank 0 once its ports are open, with the control and publish endpoints bound.
    public static func runSession(_ comm: Communicator, options: StreamOptions, logDirectory: String?, echo: Bool,
                                  label: String = "stream:", ready: ((_ control: String?, _ publish: String?) -> Void)? = nil) throws {
        StreamSignal.install()
        let file = try RankLogFile(rank: comm.rank, directory: logDirectory, echo: comm.rank == 0 && echo)
        let logger = Logger(label: "ns.stream") { _ in RankLogHandler(file: file) }
        let session = try StreamSession(comm: comm, options: options) { line in logger.info("\(line)") }
        if comm.rank == 0 {
            var line = "\(label) \(comm.size) ranks; receiving from \(options.connect)"
            if let c = session.controlEndpoint { line += "; control \(c)" }
            if let p = session.publishEndpoint { line += "; publishing on \(p)" }
            logger.info("\(line)")
            if let directory = logDirectory {
                logger.info("stream: every rank logs to \(directory) (merged: ns-mpirun logs \(directory))")
            } else {
                logger.info("stream: no log files (log_dir \"none\")")
            }
            ready?(session.controlEndpoint, session.publishEndpoint)
        } else {
            logger.info("stream: rank \(comm.rank) of \(comm.size) ready, pid \(getpid()) on \(ProcessInfo.processInfo.hostName)")
        }
        try session.run()
    }

    public func process(_ item: StageItem, emit: (StageItem) throws -> Void) throws {}
    public func flush(emit: (StageItem) throws -> Void) throws {}
    public func reset() {}
}
