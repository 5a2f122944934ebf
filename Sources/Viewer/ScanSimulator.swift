import Foundation

/// A simulated scan started from the page, for training and demos: the
/// viewer runs `ns-mpirun fccd-sim` bound where the session reads frames,
/// one at a time, with the size, rate and faults the page chose (each
/// checked here before anything starts).
public final class ScanSimulator: @unchecked Sendable {
    public struct Request: Sendable, Equatable {
        public var scan: String
        public var rate: Double
        public var scanID: String
        public var faults: [String: Double]
    }

    private let lock = NSLock()
    private var process: Process?
    private var output = Data()
    private var last: [String: Any] = ["running": false]

    public init() {}

    static let faultNames = ["drop", "duplicate", "reorder", "corrupt"]
    static let maxFrames = 10_000

    /// The request checked, or what is wrong with it, field by field.
    static func parse(_ o: [String: Any]) -> Result<Request, ViewerError> {
        var problems: [String] = []
        let scan = (o["scan"] as? String) ?? "10x10"
        if let frames = frames(scan) {
            if frames > maxFrames { problems.append("scan: \(frames) frames, at most \(maxFrames) from the page") }
        } else {
            problems.append("scan: '\(scan.prefix(32))' is not RxC, spiral:N or rounds:N")
        }
        let rate = (o["rate"] as? NSNumber)?.doubleValue ?? 10
        if !(rate >= 0.1 && rate <= 1000) { problems.append("rate: \(rate) frames/s is outside 0.1...1000") }
        let id = (o["scan_id"] as? String) ?? "sim-\(Int(Date().timeIntervalSince1970) % 100_000)"
        if id.isEmpty || id.count > 64 || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            problems.append("scan_id: letters, digits, '-' and '_', 1 to 64 of them")
        }
        var faults: [String: Double] = [:]
        for name in faultNames {
            let p = (o[name] as? NSNumber)?.doubleValue ?? 0
            if !(0...1).contains(p) { problems.append("\(name): \(p) is not a probability in 0...1") }
            if p > 0 { faults[name] = p }
        }
        guard problems.isEmpty else { return .failure(ViewerError(problems.joined(separator: "; "))) }
        return .success(Request(scan: scan, rate: rate, scanID: id, faults: faults))
    }

    static func frames(_ scan: String) -> Int? {
        let parts = scan.split(separator: "x")
        if parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]), r > 0, c > 0, r <= 1000, c <= 1000 { return r * c }
        for prefix in ["spiral:", "rounds:"] where scan.hasPrefix(prefix) {
            if let n = Int(scan.dropFirst(prefix.count)), n > 0, n <= 1_000_000 { return n }
        }
        return nil
    }

    /// Starts the simulator bound to `detector` (the session's `--connect`, on this host).
    func start(_ o: [String: Any], detector: String?) -> [String: Any] {
        let request: Request
        switch Self.parse(o) {
        case .failure(let e): return ["ok": false, "error": "simulate: \(e)"]
        case .success(let r): request = r
        }
        guard let detector else {
            return ["ok": false, "error": "simulate: no status from the session yet, so its detector endpoint is unknown"]
        }
        guard detector.hasPrefix("tcp://127.") || detector.hasPrefix("tcp://localhost:") || detector.hasPrefix("ipc://") else {
            return ["ok": false, "error": "simulate: the session reads frames from \(detector), not on this host: start `ns-mpirun fccd-sim --bind \(detector)` there"]
        }
        lock.lock()
        defer { lock.unlock() }
        if let p = process, p.isRunning {
            return ["ok": false, "error": "simulate: a simulated scan is still being sent (pid \(p.processIdentifier))"]
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var arguments = ["fccd-sim", "--scan", request.scan, "--rate", "\(request.rate)", "--bind", detector, "--scan-id", request.scanID]
        for (name, value) in request.faults.sorted(by: { $0.key < $1.key }) { arguments += ["--\(name)", "\(value)"] }
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        output = Data()
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock()
            self.output.append(d)
            if self.output.count > 8192 { self.output = self.output.suffix(4096) }
            self.lock.unlock()
        }
        do {
            try p.run()
        } catch {
            return ["ok": false, "error": "simulate: cannot start fccd-sim: \(error)"]
        }
        process = p
        last = ["running": true, "scan_id": request.scanID, "scan": request.scan, "rate": request.rate, "command": arguments.joined(separator: " ")]
        return ["ok": true, "scan_id": request.scanID, "command": "ns-mpirun " + arguments.joined(separator: " ")]
    }

    /// The latest simulated scan: running or its exit status, and the end of its output.
    func state() -> [String: Any] {
        lock.lock()
        defer { lock.unlock() }
        var s = last
        if let p = process {
            s["running"] = p.isRunning
            if !p.isRunning { s["exit_status"] = p.terminationStatus }
        }
        s["output"] = String(decoding: output.suffix(2000), as: UTF8.self)
        return s
    }

    public func stop() {
        lock.lock()
        let p = process
        lock.unlock()
        if let p, p.isRunning { p.terminate(); p.waitUntilExit() }
    }
}
