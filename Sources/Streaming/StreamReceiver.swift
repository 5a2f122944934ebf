import Foundation
import Ingest
import RemoteAccess
import SessionMetrics
import SwiftZMQ

/// Rank 0's receiving thread: reads the detector's PULL socket and checks
/// every message, answers the control port (REP), publishes status and
/// reconstructions (PUB), and collects every rank's heartbeat. It owns all
/// of rank 0's sockets and makes no MPI calls, so status flows at its pace
/// while a long iteration, the solver's start, a file being written or a
/// stuck collective holds the main loop.
final class StreamReceiver: @unchecked Sendable {
    let queue: IngestQueue
    private let context: ZMQContext
    /// The control and publish ports' context: its ZAP handler (under CURVE) must not see the other sockets.
    private let serviceContext: ZMQContext
    private let heartbeatContext: ZMQContext
    private let curve: CurveServer?
    /// Who may change the session (abort, set, shutdown) when the ports are CURVE servers.
    private let operators: AllowedKeys?
    private let data: ZMQSocket
    /// The data socket's connection events (see `watchConnection`).
    private let dataEvents: ZMQSocket
    private let endpoint: String
    private let maxMessageBytes: Int64
    private var droppedAt: Date?
    private var reconnecting = false
    /// A checked message that waits for room in the queue (the data socket is not read meanwhile).
    private var waiting: Inbound?
    private let control: ZMQSocket?
    private let publisher: ZMQSocket?
    private let heartbeats: ZMQSocket
    private var board = HeartbeatBoard()
    private let ranks: Int
    private let statusInterval: Double
    private var lastPublished = Date.distantPast
    private let statusLock = NSLock()
    private var status: [String: Any] = [:]
    private var statusTime = Date()
    /// Messages for the publish port from the main loop, sent by this thread.
    private var outbox: [[[UInt8]]] = []
    /// Log lines for the publish port, apart from `statusLock`: lines are logged while it is held.
    private let logLock = NSLock()
    private var logOutbox: [[[UInt8]]] = []
    private let stopFlag = NSLock()
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    let controlEndpoint: String?
    let publishEndpoint: String?
    /// Where the ranks send heartbeats, and the CURVE key they need for it.
    let heartbeatEndpoint: String
    let heartbeatKey: String
    private let log: (String) -> Void
    let heartbeatTimeout: Double
    private var stallReported = false
    /// Counted by the main loop; its gauges are set here from the status, and its text published on `metrics`.
    let metrics: SessionMetrics?
    private var lastMetrics = Date.distantPast

    /// `allRanksHere`: every one of the `ranks` runs on this host, so heartbeats come over loopback.
    init(connect endpoint: String, control controlAddress: String?, publish publishAddress: String? = nil, queue: IngestQueue,
         ranks: Int = 1, allRanksHere: Bool = true, statusInterval: Double = 1, heartbeatTimeout: Double = 60,
         maxMessageBytes: Int64 = -1, security: StreamOptions.Security = .init(), metrics: SessionMetrics? = nil,
         log: @escaping (String) -> Void) throws {
        self.queue = queue
        self.metrics = metrics
        self.log = log
        self.ranks = ranks
        self.statusInterval = statusInterval
        self.heartbeatTimeout = heartbeatTimeout
        let context = try ZMQContext()
        self.context = context
        data = try ZMQSocket(context, .pull)
        // A deep receive queue absorbs bursts; beyond it the sender blocks.
        try data.setReceiveHighWaterMark(1000)
        // A message too large to be a frame must not exhaust rank 0's memory before its header is read.
        try data.setMaxMessageSize(maxMessageBytes)
        dataEvents = try data.monitor([.disconnected, .connected, .connectDelayed, .connectRetried])
        self.endpoint = endpoint
        self.maxMessageBytes = maxMessageBytes
        if let detectorKey = security.detectorKeyFile, let secret = security.secretFile {
            try CurveClient(secretFile: secret, serverFile: detectorKey).secure(data)
        }
        try data.connect(endpoint)
        let serviceContext = try ZMQContext()
        self.serviceContext = serviceContext
        var server: CurveServer?
        if security.servesCurve, let secret = security.secretFile, let clients = security.clientsDirectory {
            let s = try CurveServer(context: serviceContext, secretFile: secret, clientsDirectory: clients, log: log)
            server = s
            operators = try security.operatorsDirectory.map {
                try AllowedKeys(directory: $0, log: log, trusted: [s.certificate.publicKey: s.certificate.name])
            } ?? s.authenticator.clients
        } else {
            operators = nil
        }
        curve = server
        func bound(_ address: String?, _ kind: ZMQSocket.Kind) throws -> (ZMQSocket?, String?) {
            guard let address else { return (nil, nil) }
            let socket = try ZMQSocket(serviceContext, kind)
            try server?.secure(socket)
            return (socket, try socket.bind(address))
        }
        (control, controlEndpoint) = try bound(controlAddress, .rep)
        (publisher, publishEndpoint) = try bound(publishAddress, .pub)
        // Heartbeats: encrypted and authenticated (CURVE, a key pair made for this session and handed
        // out over MPI), on loopback when every rank runs here; a heartbeat is small, so is the limit.
        heartbeatContext = try ZMQContext()
        heartbeats = try ZMQSocket(heartbeatContext, .pull)
        let keys = try ZMQ.curveKeyPair()
        try heartbeats.setCurveServer(secretKey: keys.secretKey)
        try heartbeats.setMaxMessageSize(4096)
        heartbeatKey = keys.publicKey
        let bound = try heartbeats.bind(allRanksHere ? "tcp://127.0.0.1:*" : "tcp://*:*")
        heartbeatEndpoint = allRanksHere ? bound : bound.replacingOccurrences(of: "0.0.0.0", with: ProcessInfo.processInfo.hostName)
    }

    func start() {
        let t = Thread { [self] in
            loop()
            finished.signal()
        }
        t.name = "ns-ingest"
        thread = t
        t.start()
    }

    func stop() {
        stopFlag.lock()
        stopping = true
        stopFlag.unlock()
        queue.close()
        if thread != nil { finished.wait() }
        data.close()
        dataEvents.close()
        control?.close()
        publisher?.close()
        heartbeats.close()
        curve?.stop()
    }

    private var shouldStop: Bool {
        stopFlag.lock()
        defer { stopFlag.unlock() }
        return stopping
    }

    /// The main loop's latest status, served as it is, with its age.
    func post(status: [String: Any]) {
        statusLock.lock()
        if stallReported { log("stream: the ranks are completing rounds again") }
        self.status = status
        statusTime = Date()
        stallReported = false
        statusLock.unlock()
    }

    /// Hands a message to the publish port (sent by this thread).
    func publish(_ parts: [[UInt8]]) {
        guard publisher != nil else { return }
        statusLock.lock()
        outbox.append(parts)
        statusLock.unlock()
    }

    /// The ranks move together, round by round: no round for this long means
    /// a rank is stuck (or lost) and the rest wait for it. Reported once per
    /// stall, in the log and in `status`, naming the late ranks. A rank that
    /// stopped just after its last heartbeat is not yet silent for the
    /// timeout when the stall is seen, so the report waits up to one more
    /// timeout for a late rank to show.
    private func checkStall() {
        statusLock.lock()
        let age = Date().timeIntervalSince(statusTime)
        let due = age > heartbeatTimeout && !stallReported && !status.isEmpty
        statusLock.unlock()
        guard due else { return }
        let late = board.ranks(ranks, timeout: heartbeatTimeout, stalled: true).filter { $0["late"] as? Bool == true }
        guard !late.isEmpty || age > 2 * heartbeatTimeout else { return }
        statusLock.lock()
        let fresh = Date().timeIntervalSince(statusTime) >= age
        if fresh { stallReported = true }
        statusLock.unlock()
        guard fresh else { return }
        let named: [String] = late.map { (row: [String: Any]) -> String in
            let rank = row["rank"] as? Int ?? -1
            let activity = row["activity"] as? String ?? "?"
            let age = row["heartbeat_age_s"] as? Double ?? -1
            return String(format: "rank %d (%@, heartbeat %.0f s old)", rank, activity, age)
        }
        let list = named.isEmpty ? "none known" : named.joined(separator: ", ")
        log(String(format: "stream: no round completed for %.0f s (heartbeat timeout %.0f s): late: %@; status reports 'stalled'",
                   age, heartbeatTimeout, list))
    }

    /// The status as the control port and the publish port give it.
    func currentStatus() -> [String: Any] {
        statusLock.lock()
        var s = status
        let age = Date().timeIntervalSince(statusTime)
        statusLock.unlock()
        let stalled = age > heartbeatTimeout
        s["status_age_s"] = age
        s["stalled"] = stalled
        // Each rank's counts from the last round, with its heartbeat as of now.
        let beats = board.ranks(ranks, timeout: heartbeatTimeout, stalled: stalled)
        var rows = (s["ranks"] as? [[String: Any]]) ?? []
        if rows.count != ranks { rows = (0..<ranks).map { ["rank": $0] } }
        for i in rows.indices {
            for (key, value) in beats[i] { rows[i][key] = value }
        }
        s["ranks"] = rows
        let late: [Int] = beats.filter { $0["late"] as? Bool == true }.compactMap { $0["rank"] as? Int }
        s["late"] = late
        s["backlog"] = queue.depth + ((s["backlog"] as? Int) ?? 0)
        return s
    }

    /// A log line on the publish port's `log` topic (any thread).
    func publishLog(_ line: String, rank: Int) {
        guard publisher != nil else { return }
        let entry: [String: Any] = ["time": Date().timeIntervalSince1970, "rank": rank, "level": LogLevel.of(line).rawValue,
                                    "message": String(line.prefix(4096))]
        guard let json = try? JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys]) else { return }
        logLock.lock()
        // A burst beyond what a viewer could read is cut (every line stays in the log file).
        if logOutbox.count < 1000 { logOutbox.append([Array("log".utf8), Array(json), []]) }
        logLock.unlock()
    }

    private func publishPending() {
        guard let publisher else { return }
        statusLock.lock()
        let parts = outbox
        outbox.removeAll()
        statusLock.unlock()
        logLock.lock()
        let lines = logOutbox
        logOutbox.removeAll()
        logLock.unlock()
        for p in lines + parts { try? publisher.send(bytes: p) }
        guard Date().timeIntervalSince(lastPublished) >= statusInterval else { return }
        lastPublished = Date()
        if let json = try? JSONSerialization.data(withJSONObject: currentStatus(), options: [.sortedKeys]) {
            try? publisher.send(bytes: [Array("status".utf8), Array(json), []])
        }
    }

    /// The gauges as of now (a scrape between two refreshes reads them at most
    /// a status interval old), and the exposition on the `metrics` topic.
    private func refreshMetrics() {
        guard let metrics, Date().timeIntervalSince(lastMetrics) >= min(statusInterval, 1) else { return }
        lastMetrics = Date()
        let s = currentStatus()
        let rows = s["ranks"] as? [[String: Any]] ?? []
        metrics.observe(backlog: s["backlog"] as? Int ?? 0, fourierError: s["scan_id"] == nil ? nil : s["fourier_error"] as? Double,
                        placementLatency: s["placement_latency_s"] as? Double, stalled: s["stalled"] as? Bool ?? false,
                        statusAge: s["status_age_s"] as? Double ?? 0, heartbeatAges: rows.map { $0["heartbeat_age_s"] as? Double })
        if let publisher { try? publisher.send(bytes: [Array("metrics".utf8), metrics.exposition(), []]) }
    }

    /// libzmq ends a connection on a protocol error (a message part over the
    /// size limit, a malformed frame) and, where this side connected, never
    /// makes it again: the session would be deaf for good. A connection that
    /// dropped and is not being retried by libzmq within half a second is
    /// made again here; the refused message is counted.
    private func watchConnection() {
        while let parts = try? dataEvents.receive(timeoutMilliseconds: 0), let event = ZMQ.MonitorEvent(parts) {
            if event.kind.contains(.disconnected) {
                droppedAt = Date()
                reconnecting = false
            } else if !event.kind.intersection([.connected, .connectDelayed, .connectRetried]).isEmpty {
                reconnecting = true
                if event.kind.contains(.connected) { droppedAt = nil }
            }
        }
        guard let dropped = droppedAt, !reconnecting, Date().timeIntervalSince(dropped) > 0.5 else { return }
        droppedAt = nil
        let reason = "message: the detector's connection was dropped on a protocol error, most likely a message part over --max-message-mb (\(maxMessageBytes >> 20) MiB); connected again"
        log("ingest: \(reason)")
        do { try data.connect(endpoint) } catch { log("ingest: cannot connect again to \(endpoint): \(error)") }
        if !queue.tryPut(.rejected(reason: reason, kind: .message(.connectionDropped))) { log("ingest: the backlog is full; the dropped connection is not counted") }
    }

    private func loop() {
        while !shouldStop {
            // While a message waits for room in the queue, the data socket is not read: ZeroMQ's
            // queue fills and the sender waits, but control, heartbeats and status go on.
            if let item = waiting, queue.tryPut(item) { waiting = nil }
            let reading = waiting == nil
            var sockets: [(socket: ZMQSocket, events: ZMQ.Events)] = [(heartbeats, .readable)]
            if let control { sockets.append((control, .readable)) }
            if reading { sockets.append((data, .readable)) }
            let ready: [ZMQ.Events]
            do {
                ready = try ZMQ.poll(sockets, timeoutMilliseconds: reading ? 50 : 5)
            } catch {
                log("ingest: polling failed: \(error)")
                continue
            }
            while let beat = try? heartbeats.receive(timeoutMilliseconds: 0) {
                if let (rank, lines) = board.record(beat.first?.bytes ?? []) {
                    for line in lines { publishLog(line, rank: rank) }
                }
            }
            checkStall()
            watchConnection()
            refreshMetrics()
            if let control, ready[1].contains(.readable) { serve(control) }
            publishPending()
            if reading, ready[sockets.count - 1].contains(.readable), let parts = try? data.receive(timeoutMilliseconds: 0) {
                let item = Self.check(parts.map(\.bytes), arrival: Date().timeIntervalSince1970)
                if !queue.tryPut(item) { waiting = item }
            }
        }
    }

    /// Classifies one multipart message; never throws.
    static func check(_ parts: [[UInt8]], arrival: Double) -> Inbound {
        guard let first = parts.first, let topic = String(validating: first, as: UTF8.self) else {
            return .rejected(reason: "message: no topic", kind: .message(.malformed))
        }
        let header = parts.count > 1 ? parts[1] : []
        let decoder = JSONDecoder()
        switch topic {
        case "frame":
            guard parts.count == 3 else {
                return .rejected(reason: "frame: \(parts.count) parts, expected 3 (topic, header, pixels)", kind: .frame(.malformed))
            }
            do {
                let h = try FrameHeader.decode(header)
                guard parts[2].count == h.payloadBytes else {
                    throw FrameError(field: "payload", problem: "\(parts[2].count) bytes, expected \(h.payloadBytes) for \(h.shapeY)x\(h.shapeX) \(h.dtype)")
                }
                return .frame(h, payload: parts[2], arrival: arrival)
            } catch {
                return .rejected(reason: "\(error)", kind: .frame(.malformed))
            }
        case "start":
            do {
                return .start(try decoder.decode(ScanStart.self, from: Data(header)))
            } catch {
                return .rejected(reason: "start: the header is not a valid start header (\(describe(error)))", kind: .message(.malformed))
            }
        case "stop":
            do {
                return .stop(try decoder.decode(ScanStop.self, from: Data(header)))
            } catch {
                return .rejected(reason: "stop: the header is not a valid stop header (\(describe(error)))", kind: .message(.malformed))
            }
        case "abort":
            let id = (try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any])?["scan_id"] as? String
            return .abort(scanID: id)
        default:
            return .rejected(reason: "message: unknown topic '\(topic.prefix(32))'", kind: .message(.unknownTopic))
        }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "'\(key.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let c): "'\(c.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type"
        case DecodingError.valueNotFound(_, let c): "'\(c.codingPath.map(\.stringValue).joined(separator: "."))' is null"
        default: "not valid JSON"
        }
    }

    private func serve(_ socket: ZMQSocket) {
        guard let parts = try? socket.receive(timeoutMilliseconds: 0) else { return }
        let reply = answer(parts.first?.bytes ?? [], from: parts.first?.property("User-Id"))
        let bytes = (try? JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys])).map { Array($0) } ?? Array("{}".utf8)
        do { try socket.send(bytes: [bytes]) } catch { log("control: cannot reply: \(error)") }
    }

    /// One control request (JSON) and its reply. Under CURVE, `key` is the
    /// client's public key (as the ZAP handler let it in), and only an
    /// operator's key may change the session.
    func answer(_ request: [UInt8], from key: String? = nil) -> [String: Any] {
        switch ControlCommand.parse(request) {
        case .status:
            var s = currentStatus()
            s["ok"] = true
            return s
        case .parameters:
            return ["ok": true, "parameters": LiveSettings.declarations]
        case .request(let r):
            let name = switch r { case .abort: "abort"; case .shutdown: "shutdown"; case .set: "set" }
            if let operators {
                guard let key, operators.name(of: key) != nil else {
                    let who = key.map { "key \(curve?.authenticator.clients.name(of: $0) ?? "?") (\(CurveCertificate.keyID($0)))" } ?? "a client without a key"
                    log("control: refused '\(name)' from \(who): not an operator's key (\(operators.directory))")
                    return ["ok": false, "command": name, "error": "'\(name)' needs an operator's key; this client's key may read status only"]
                }
            }
            queue.request(r)
            return ["ok": true, "command": name]
        case .refused(let error):
            return ["ok": false, "error": error]
        }
    }
}

/// How a log line reads, for the `log` topic: warnings and errors stand out in a viewer.
enum LogLevel: String {
    case info, warning, error

    static func of(_ line: String) -> LogLevel {
        let l = line.lowercased()
        if l.contains("error") || l.contains("failed") || l.contains("cannot") || l.contains("refused") { return .error }
        if l.contains("warning") || l.contains("late:") || l.contains("stalled") || l.contains("rejected") { return .warning }
        return .info
    }
}
