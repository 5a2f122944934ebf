import ArgumentParser
import Foundation
import Pipeline
import PipelineRuntime
import Streaming

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "A live session: rank 0 receives a detector's frames over ZeroMQ, every rank cleans them, and the solver runs while the scan arrives; each scan is written to its own CXI file.",
        discussion: """
            Rank 0 connects a PULL socket to --connect (the detector, or `ns-mpirun fccd-sim`), checks every \
            message, and deals frames to the ranks by credit; clean frames go to the rank owning their tile. \
            The solver starts once --solve-after of the scan is placed (unmeasured frames weigh 0), iterates \
            while frames arrive, and runs --iterations more after the last one. Then it writes \
            OUTPUT_DIR/SCAN_ID.cxi in parallel and waits for the next scan. A scan whose sender goes silent \
            for --frame-timeout seconds ends with what arrived. The control port (REP, JSON) answers status, \
            abort, set and shutdown; the publish port sends `status` and `rec` messages (docs/PROTOCOL.md). \
            The settings come from the stream stage of the shipped pipeline pipelines/stream.json (or \
            --pipeline FILE); each option given overrides its key, named in brackets.
            """)

    @Option(help: "The detector's endpoint to connect to. [endpoints.detector]")
    var connect: String?
    @Option(help: "Control endpoint to bind on rank 0 (REP; e.g. tcp://127.0.0.1:5556). [endpoints.control]")
    var control: String?
    @Option(help: "Status and preview endpoint to bind on rank 0 (PUB; e.g. tcp://127.0.0.1:5557). [endpoints.publish]")
    var publish: String?
    @Option(name: [.customShort("o"), .long], help: "Folder for the scans' CXI files (SCAN_ID.cxi). [output.directory]")
    var outputDir: String?
    @OptionGroup(title: "Engine (--iterations: iterations after the last frame)") var engine: EngineArguments
    @OptionGroup(title: "Preprocessing of raw frames") var cleaning: PreprocessArguments
    @Option(help: "The most seconds the iterations after the last frame may take, so the result is written in time (0: no limit). [final_seconds]")
    var finalSeconds: Double?
    @Option(help: "Start the solver once this fraction of the scan's frames is placed. [solve_after]")
    var solveAfter: Double?
    @Option(help: "Tile grid RxC over the ranks (\"\": as square as the object allows). [tiles]")
    var tiles: String?
    @Option(help: "The first probe: 'optics' from the zone plate and defocus the scan's start records (the mean pattern, with a warning, when it records none), 'mean' the mean pattern with --probe-defocus's phase. [first_probe]")
    var firstProbe: String?
    @Option(help: "Defocus in m for the mean pattern's phase (0: flat). [probe_defocus]")
    var probeDefocus: Double?
    @Option(help: "Raw frames a rank may hold waiting to be cleaned. [credit]")
    var credit: Int?
    @Option(help: "Frames a rank cleans between two iterations. [clean_per_round]")
    var cleanPerRound: Int?
    @Option(help: "End a scan with what arrived after this many silent seconds. [frame_timeout]")
    var frameTimeout: Double?
    @Option(help: "Frames rank 0 holds beyond ZeroMQ's queue before the sender is made to wait. [backlog]")
    var backlog: Int?
    @Option(help: "The largest message part accepted from the detector, in MiB (a larger one makes ZeroMQ drop the connection, which the sender then makes again). [max_message_mb]")
    var maxMessageMb: Int?
    @Option(help: "Publish the object and probe every k iterations (0: only at the end of a scan). [publish_every]")
    var publishEvery: Int?
    @Option(help: "Seconds between status messages on the publish port. [status_interval]")
    var statusInterval: Double?
    @Flag(help: "Also write each scan's clean frames and mask into its file (it can then be reconstructed again with `recon`). [output.save: clean]")
    var saveClean = false
    @Flag(help: "Also write each raw scan as it arrives to OUTPUT_DIR/SCAN_ID-raw.cxi, in the layout raw2cxi reads. [output.save: raw]")
    var saveRaw = false
    @Option(help: "Report a stall (status 'stalled', a log line) when no round completes for this many seconds. [heartbeat_timeout]")
    var heartbeatTimeout: Double?
    @Option(help: "Stop after this many scans (0: run until 'shutdown' or SIGTERM). [scans]")
    var scans: Int?
    @Option(help: "Memory a scan's solve may take on each rank, in GB (0: 80% of the host's memory shared by its ranks); a larger scan's 'start' is refused before anything is allocated. [max_memory_gb]")
    var maxMemoryGb: Double?
    @Option(help: "Folder for one log file per rank (rank-NNNN.log; read them merged with `ns-mpirun logs`); default: logs/ in the output directory, 'none': no files. [log_dir]")
    var logDir: String?
    @Option(help: "A simulated scan (raw or clean, as `simulate` writes it; the file fccd-sim --input sends) whose true object each scan's solve is compared with: the NRMSE is published with each `rec` and written to the scan's file, where the object grids match. [truth]")
    var truth: String?
    @OptionGroup(title: "Security (needed for any endpoint beyond loopback; docs/security.md)") var security: SessionSecurityArguments
    @OptionGroup(title: "Metrics (Prometheus; docs/security.md)") var metrics: SessionMetricsArguments
    @Option(help: "Start the web front-end (`ns-mpirun view`) beside rank 0, serving the page on HOST:PORT (loopback; port 0: any free port); the control and publish ports bind to free loopback ports unless given.")
    var view: String?
    @OptionGroup(title: "Pipeline") var pipeline: PipelineArguments
    @Flag(help: "No progress lines.")
    var quiet = false

    var overrides: [CommandParameters.Override] { get throws {
        var o = try engine.overrides + cleaning.overrides
        if let v = connect { o.append(.init("endpoints.detector", .string(v), option: "--connect")) }
        if let v = control { o.append(.init("endpoints.control", .string(v), option: "--control")) }
        if let v = publish { o.append(.init("endpoints.publish", .string(v), option: "--publish")) }
        if let v = outputDir { o.append(.init("output.directory", .string(v), option: "--output-dir")) }
        if let v = finalSeconds { o.append(.init("final_seconds", .number(v), option: "--final-seconds")) }
        if let v = solveAfter { o.append(.init("solve_after", .number(v), option: "--solve-after")) }
        if let v = tiles { o.append(.init("tiles", .string(v), option: "--tiles")) }
        if let v = firstProbe { o.append(.init("first_probe", .string(v), option: "--first-probe")) }
        if let v = probeDefocus { o.append(.init("probe_defocus", .number(v), option: "--probe-defocus")) }
        if let v = credit { o.append(.init("credit", .integer(v), option: "--credit")) }
        if let v = cleanPerRound { o.append(.init("clean_per_round", .integer(v), option: "--clean-per-round")) }
        if let v = frameTimeout { o.append(.init("frame_timeout", .number(v), option: "--frame-timeout")) }
        if let v = backlog { o.append(.init("backlog", .integer(v), option: "--backlog")) }
        if let v = maxMessageMb { o.append(.init("max_message_mb", .integer(v), option: "--max-message-mb")) }
        if let v = publishEvery { o.append(.init("publish_every", .integer(v), option: "--publish-every")) }
        if let v = statusInterval { o.append(.init("status_interval", .number(v), option: "--status-interval")) }
        if let v = heartbeatTimeout { o.append(.init("heartbeat_timeout", .number(v), option: "--heartbeat-timeout")) }
        if let v = scans { o.append(.init("scans", .integer(v), option: "--scans")) }
        if let v = maxMemoryGb { o.append(.init("max_memory_gb", .number(v), option: "--max-memory-gb")) }
        if let v = logDir { o.append(.init("log_dir", .string(v), option: "--log-dir")) }
        if let v = truth { o.append(.init("truth", .string(v), option: "--truth")) }
        return o + security.overrides + metrics.overrides
    } }

    /// The session's options and log folder, from the pipeline and the options given.
    func resolved() throws -> (options: StreamOptions, logDir: String?, parameters: CommandParameters) {
        var overrides = try self.overrides
        var p = try resolveParameters("stream", pipeline, overrides)
        if view != nil {
            // The viewer needs both ports: any free loopback port where the pipeline names none.
            for key in ["control", "publish"] where p.spec.endpoints[key] == nil {
                overrides.append(.init("endpoints.\(key)", .string("tcp://127.0.0.1:*"), option: "--view"))
            }
            p = try resolveParameters("stream", pipeline, overrides)
        }
        if saveClean || saveRaw {
            // The flags add to the products the pipeline keeps.
            var save = Set(p.spec.save.map(\.rawValue))
            if saveClean { save.insert("clean") }
            if saveRaw { save.insert("raw") }
            let list = "[" + save.sorted().map { "\"\($0)\"" }.joined(separator: ",") + "]"
            p = try resolveParameters("stream", pipeline, overrides + [.init("output.save", json: list, option: saveClean ? "--save-clean" : "--save-raw")])
        }
        var options: StreamOptions
        do {
            options = try StreamStage.options(p.parameters, endpoints: p.spec.endpoints, save: p.spec.save, outputDirectory: p.spec.outputDirectory)
        } catch {
            throw ValidationError("\(p.spec.file): \(error)")
        }
        options.command = CommandLine.arguments.joined(separator: " ")
        options.version = NanosurveyorVersion.string
        return (options, StreamStage.logDirectory(p.parameters.string("log_dir"), outputDirectory: options.outputDirectory), p)
    }

    func validate() throws {
        if let view { _ = try ViewCommand.parse(["--session", "tcp://127.0.0.1:1,tcp://127.0.0.1:2", "--http", view]) }
        _ = try resolved()
    }

    func run() throws {
        let (options, logDir, parameters) = try resolved()
        if pipeline.showIfAsked(parameters) { return }
        var viewer: ViewerChild?
        defer { viewer?.stop() }
        try withMPI { world in
            try StreamStage.runSession(world, options: options, logDirectory: logDir, echo: !quiet) { control, publish in
                guard let view, let control, let publish else { return }
                do {
                    viewer = try ViewerChild(publish: publish, control: control, http: view, files: options.outputDirectory,
                                             curveSecret: options.security.servesCurve ? options.security.secretFile : nil)
                } catch {
                    print("stream: the viewer did not start (\(error)); the session goes on without it")
                }
            }
        }
    }
}
