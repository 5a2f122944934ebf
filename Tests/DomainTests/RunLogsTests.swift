import Foundation
import Logging
import PipelineRuntime
import RunLogs
import Testing

@Suite struct RunLogsTests {
    /// A log on a full disk loses lines, says so, and the program goes on.
    @Test func aFullDiskLosesLinesWithoutEndingTheProgram() throws {
        let dir = NSTemporaryDirectory() + "ns-logs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Every write to /dev/full fails with ENOSPC.
        try FileManager.default.createSymbolicLink(atPath: dir + "/" + RunLogs.fileName(rank: 0), withDestinationPath: "/dev/full")
        let file = try RankLogFile(rank: 0, directory: dir, echo: false)
        for i in 0..<3 { file.write(level: .info, "line \(i)") }
        #expect(file.linesLost == 3)
    }

    @Test func aLiveSessionLogsBesideItsScansUnlessToldNot() {
        #expect(StreamStage.logDirectory("", outputDirectory: "runs/live") == "runs/live/logs")
        #expect(StreamStage.logDirectory("none", outputDirectory: "runs/live") == nil)
        #expect(StreamStage.logDirectory("elsewhere", outputDirectory: "runs/live") { "/base/" + $0 } == "/base/elsewhere")
    }
}
