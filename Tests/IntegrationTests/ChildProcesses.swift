import Foundation
import Testing

/// Ending the programs a test starts without ever hanging the suite: a
/// launcher killed past its time leaves ranks that hold off SIGTERM (stuck
/// in a collective, or finishing a checkpoint) and still hold its output
/// pipe, so neither `waitUntilExit` nor reading to the pipe's end returns.
enum ChildProcesses {
    /// `root` and every process descended from it, from /proc's parent links.
    static func tree(_ root: pid_t) -> [pid_t] {
        var children: [pid_t: [pid_t]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let name = stat.lastIndex(of: ")") else { continue }
            // After the name: state, then the parent's pid.
            let fields = stat[stat.index(after: name)...].split(separator: " ")
            if fields.count > 1, let parent = pid_t(fields[1]) { children[parent, default: []].append(pid) }
        }
        var members = [root], i = 0
        while i < members.count {
            members += children[members[i]] ?? []
            i += 1
        }
        return members
    }

    /// Asks `process` to stop (SIGTERM, which the launcher passes to the
    /// ranks), then after `grace` kills it and everything it started. The
    /// tree is read before anything dies, since orphans leave it.
    static func stop(_ process: Process, grace: TimeInterval = 10) {
        let root = process.processIdentifier
        let members = tree(root)
        if !ended(process) { process.terminate() }
        let deadline = Date().addingTimeInterval(grace)
        while !ended(process) && Date() < deadline { usleep(20_000) }
        var left = Set(members.dropFirst().flatMap { tree($0) })
        if !ended(process) { left.insert(root) }
        for pid in left { kill(pid, SIGKILL) }
        while !ended(process) { usleep(20_000) }
    }

    /// The test process's in-process MPI (Open MPI's singleton runtime)
    /// reaps any child on SIGCHLD, so Foundation may never hear of an exit
    /// and `waitUntilExit` would wait for ever: a child is also over when
    /// its pid is gone.
    static func ended(_ process: Process) -> Bool {
        !process.isRunning || (kill(process.processIdentifier, 0) != 0 && errno == ESRCH)
    }

    /// The exit status, or -1 where another waiter took it.
    static func status(_ process: Process) -> Int32 { process.isRunning ? -1 : process.terminationStatus }

    /// Waits up to `timeout` for the exit; past it, records that and stops
    /// the process and its children. True when it ended in time.
    @discardableResult
    static func await(_ process: Process, timeout: TimeInterval, what: @autoclosure () -> String) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !ended(process) && Date() < deadline { usleep(20_000) }
        if ended(process) {
            if !process.isRunning { process.waitUntilExit() }
            return true
        }
        Issue.record("\(what()) did not finish within \(timeout) s")
        stop(process)
        return false
    }

    /// The rest of `pipe`'s output once its writer has exited, waiting at
    /// most `timeout` for any process it left behind to close the pipe.
    static func drain(_ pipe: Pipe, into data: LockedData, timeout: TimeInterval = 10) {
        let handle = pipe.fileHandleForReading
        handle.readabilityHandler = nil
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            data.append(handle.readDataToEndOfFile())
            done.signal()
        }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            Issue.record("output still held open \(timeout) s after the program exited: a child of it outlived it")
        }
    }
}

/// The harness's own guarantee: a launcher that ignores SIGTERM, and a child
/// of it that holds the output pipe, are both gone within the grace time.
@Suite struct ChildProcessesTests {
    @Test func aStuckTreeIsStoppedAndItsOutputRead() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "trap '' TERM; echo started; (trap '' TERM; sleep 300) & wait"]
        let pipe = Pipe(), output = LockedData()
        process.standardOutput = pipe
        pipe.fileHandleForReading.readabilityHandler = { output.append($0.availableData) }
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while ChildProcesses.tree(process.processIdentifier).count < 2 && Date() < deadline { usleep(20_000) }
        let members = ChildProcesses.tree(process.processIdentifier)
        try #require(members.count >= 2, "the shell started no child")
        let start = Date()
        ChildProcesses.stop(process, grace: 1)
        ChildProcesses.drain(pipe, into: output, timeout: 5)
        #expect(Date().timeIntervalSince(start) < 8)
        #expect(output.string.contains("started"))
        for pid in members.dropFirst() {
            // Dead, or a zombie nobody has reaped yet.
            let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?
                .split(separator: " ").first
            #expect(state == nil || state == "Z", "process \(pid) of the tree still runs")
        }
    }
}
