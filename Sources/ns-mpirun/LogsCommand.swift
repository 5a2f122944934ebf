import ArgumentParser
import Foundation
import RunLogs

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a run's per-rank logs (RUN_DIR/logs/rank-NNNN.log or RUN_DIR/rank-NNNN.log) merged in time order.")

    @Argument(help: "The run directory (or its logs folder).")
    var runDirectory: String
    @Flag(name: .shortAndLong, help: "Keep printing lines as the ranks write them (Ctrl-C to stop).")
    var follow = false
    @Option(help: "With --follow: stop after this many seconds without a new line (default: never).")
    var idleExit: Double?

    func run() throws {
        guard FileManager.default.fileExists(atPath: runDirectory) else {
            throw ValidationError("no run directory at '\(runDirectory)'")
        }
        let reader = RunLogs.Reader(directory: runDirectory)
        if !follow && RunLogs.files(in: runDirectory).isEmpty {
            throw ValidationError("'\(runDirectory)' holds no rank logs (rank-NNNN.log, here or under logs/)")
        }
        var lastLine = Date()
        repeat {
            let lines = reader.next()
            for line in lines { print(line) }
            fflush(nil)
            if !lines.isEmpty { lastLine = Date() }
            if follow {
                if let idleExit, Date().timeIntervalSince(lastLine) > idleExit { break }
                usleep(200_000)
            }
        } while follow
    }
}
