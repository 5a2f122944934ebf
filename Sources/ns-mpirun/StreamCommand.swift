import ArgumentParser
import Foundation
import Logging
import Recon
import RunLogs
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
            abort, set and shutdown; the publish port sends `status` and `rec` messages (docs/PROTOCOL.md).
            """)

    @Option(help: "The detector's endpoint to connect to.")
    var connect = "tcp://127.0.0.1:5555"
    @Option(help: "Control endpoint to bind on rank 0 (REP; e.g. tcp://127.0.0.1:5556).")
    var control: String?
    @Option(help: "Status and preview endpoint to bind on rank 0 (PUB; e.g. tcp://127.0.0.1:5557).")
    var publish: String?
    @Option(name: [.customShort("o"), .long], help: "Folder for the scans' CXI files (SCAN_ID.cxi).")
    var outputDir = "."
    @OptionGroup(title: "Engine (--iterations: iterations after the last frame)") var engine: EngineArguments
    @OptionGroup(title: "Preprocessing of raw frames") var cleaning: PreprocessArguments
    @Option(help: "The most seconds the iterations after the last frame may take, so the result is written in time (0: no limit).")
    var finalSeconds = 8.0
    @Option(help: "Start the solver once this fraction of the scan's frames is placed.")
    var solveAfter = 0.1
    @Option(help: "Tile grid RxC over the ranks (default: as square as the object allows).")
    var tiles: String?
    @Option(help: "Defocus in m for the first probe's phase (0: flat).")
    var probeDefocus = 0.0
    @Option(help: "Raw frames a rank may hold waiting to be cleaned.")
    var credit = 8
    @Option(help: "Frames a rank cleans between two iterations.")
    var cleanPerRound = 8
    @Option(help: "End a scan with what arrived after this many silent seconds.")
    var frameTimeout = 10.0
    @Option(help: "Frames rank 0 holds beyond ZeroMQ's queue before the sender is made to wait.")
    var backlog = 4096
    @Option(help: "The largest message part accepted from the detector, in MiB (a larger one makes ZeroMQ drop the connection, which the sender then makes again).")
    var maxMessageMb = 1024
    @Option(help: "Publish the object and probe every k iterations (0: only at the end of a scan).")
    var publishEvery = 10
    @Option(help: "Seconds between status messages on the publish port.")
    var statusInterval = 1.0
    @Flag(help: "Also write each scan's clean frames and mask into its file (it can then be reconstructed again with `recon`).")
    var saveClean = false
    @Flag(help: "Also write each raw scan as it arrives to OUTPUT_DIR/SCAN_ID-raw.cxi, in the layout raw2cxi reads.")
    var saveRaw = false
    @Option(help: "Report a stall (status 'stalled', a log line) when no round completes for this many seconds.")
    var heartbeatTimeout = 60.0
    @Option(help: "Stop after this many scans (default: run until 'shutdown' or SIGTERM).")
    var scans: Int?
    @Option(help: "Folder for one log file per rank (rank-NNNN.log; read them merged with `ns-mpirun logs`).")
    var logDir: String?
    @Flag(help: "No progress lines.")
    var quiet = false

    var options: StreamOptions {
        get throws {
            var o = StreamOptions()
            o.connect = connect
            o.control = control
            o.publish = publish
            o.outputDirectory = outputDir
            o.engine = engine.options
            o.finalIterations = engine.iterations
            o.finalSeconds = finalSeconds
            o.preprocess = try cleaning.options
            o.solveAfter = solveAfter
            o.probeDefocus = probeDefocus
            o.tiles = try parseTileGrid(tiles)
            o.credit = credit
            o.cleanPerRound = cleanPerRound
            o.frameTimeout = frameTimeout
            o.backlogFrames = backlog
            o.maxMessageMegabytes = maxMessageMb
            o.publishEvery = publishEvery
            o.scans = scans
            o.statusInterval = statusInterval
            o.saveClean = saveClean
            o.saveRaw = saveRaw
            o.heartbeatTimeout = heartbeatTimeout
            o.command = CommandLine.arguments.joined(separator: " ")
            o.version = NanosurveyorVersion.string
            return o
        }
    }

    func validate() throws {
        let problems = try options.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }

    func run() throws {
        let options = try options
        try withMPI { world in
            StreamSignal.install()
            let file = try RankLogFile(rank: world.rank, directory: logDir, echo: world.rank == 0 && !quiet)
            let logger = Logger(label: "ns.stream") { _ in RankLogHandler(file: file) }
            let session = try StreamSession(comm: world, options: options) { line in logger.info("\(line)") }
            if world.rank == 0 {
                var line = "stream: \(world.size) ranks; receiving from \(options.connect)"
                if let c = session.controlEndpoint { line += "; control \(c)" }
                if let p = session.publishEndpoint { line += "; publishing on \(p)" }
                logger.info("\(line)")
            } else {
                logger.info("stream: rank \(world.rank) of \(world.size) ready, pid \(getpid()) on \(ProcessInfo.processInfo.hostName)")
            }
            try session.run()
        }
    }
}
