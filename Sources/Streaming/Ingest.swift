import Foundation
import Ingest
import Pipeline
import SwiftZMQ

/// One message from the detector, checked by the receiving thread.
public enum Inbound: Sendable {
    case start(ScanStart)
    /// A frame whose header is valid and whose payload has the header's size.
    case frame(FrameHeader, payload: [UInt8], arrival: Double)
    case stop(ScanStop)
    case abort(scanID: String?)
    /// A message that cannot be used; the reason names the part at fault.
    case rejected(reason: String, isFrame: Bool)
}

/// A request from the control port for the session's main loop.
public enum ControlRequest: Sendable, Equatable {
    case abort
    case shutdown
    case set(LiveSettings)
}

/// Parameters a running session accepts through the control port's `set`.
public struct LiveSettings: Codable, Sendable, Equatable {
    /// Iterations after the last frame of a scan.
    public var finalIterations: Int?
    /// "dm" or "raar", and RAAR's beta.
    public var algorithm: String?
    public var beta: Double?
    /// Publish the reconstruction every k iterations (0: only at the end of a scan).
    public var publishEvery: Int?

    enum CodingKeys: String, CodingKey {
        case finalIterations = "final_iterations", algorithm, beta, publishEvery = "publish_every"
    }

    public init(finalIterations: Int? = nil, algorithm: String? = nil, beta: Double? = nil, publishEvery: Int? = nil) {
        self.finalIterations = finalIterations
        self.algorithm = algorithm
        self.beta = beta
        self.publishEvery = publishEvery
    }

    /// The parameters `set` takes, declared as pipeline stage parameters are,
    /// so a request is checked by the same rules and worded the same way.
    public static let parameters: [ParameterSpec] = [
        ParameterSpec("final_iterations", .integer(0...1_000_000), default: nil, doc: "Iterations after the last frame of a scan."),
        ParameterSpec("algorithm", .choice(["dm", "raar"]), default: nil, doc: "Difference map or RAAR, from the next iteration."),
        ParameterSpec("beta", .number(1e-6...1), default: nil, doc: "RAAR relaxation."),
        ParameterSpec("publish_every", .integer(0...1_000_000), default: nil, doc: "Iterations between published reconstructions (0: at the end only)."),
    ]

    /// Checks a `set` request's fields with the declared parameters; the
    /// settings, or every problem, each naming its field.
    public static func parse(_ fields: [String: Any]) -> (settings: LiveSettings?, problems: [String]) {
        var problems: [String] = []
        var settings = LiveSettings()
        for (key, raw) in fields.sorted(by: { $0.key < $1.key }) {
            guard let spec = parameters.first(where: { $0.name == key }) else {
                let near = nearest(key, in: parameters.map(\.name)).map { " (did you mean '\($0)'?)" } ?? ""
                problems.append("\(key): unknown parameter\(near); known: \(parameters.map(\.name).joined(separator: ", "))")
                continue
            }
            // JSON numbers read as integers where whole, so the declaration decides.
            let value: ParameterValue
            if let t = raw as? String {
                value = .string(t)
            } else if let n = raw as? NSNumber {
                let d = n.doubleValue
                value = d.rounded() == d && abs(d) < 1e15 ? .integer(Int(d)) : .number(d)
            } else {
                problems.append("\(key): expected a number or a string, got \(raw)")
                continue
            }
            switch spec.check(value) {
            case .invalid(let problem): problems.append("\(key): \(problem)")
            case .valid(let v):
                switch (key, v) {
                case ("final_iterations", .integer(let n)): settings.finalIterations = n
                case ("publish_every", .integer(let n)): settings.publishEvery = n
                case ("algorithm", .string(let a)): settings.algorithm = a
                case ("beta", .number(let b)): settings.beta = b
                default: problems.append("\(key): unexpected value \(v)")
                }
            }
        }
        return (problems.isEmpty ? settings : nil, problems)
    }

    /// Problems, each naming the field; empty when the settings can be applied.
    public func problems() -> [String] {
        var out: [String] = []
        if let n = finalIterations, !(0...100_000).contains(n) { out.append("final_iterations: \(n) is outside 0...100000") }
        if let a = algorithm, a != "dm", a != "raar" { out.append("algorithm: '\(a)' is neither 'dm' nor 'raar'") }
        if let b = beta, !(b > 0 && b <= 1) { out.append("beta: \(b) is outside (0, 1]") }
        if let k = publishEvery, k < 0 { out.append("publish_every: \(k) is negative") }
        return out
    }
}

/// The messages between the receiving thread and the main loop: bounded,
/// so that a slow pipeline stops the thread reading, ZeroMQ's queue fills
/// and the sender blocks. Nothing is dropped anywhere.
final class IngestQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Inbound] = []
    private var head = 0
    private var frameBytes = 0
    private var framesHeld = 0
    private var requests: [ControlRequest] = []
    private var closed = false
    let capacityFrames: Int
    let capacityBytes: Int

    init(capacityFrames: Int, capacityBytes: Int) {
        self.capacityFrames = capacityFrames
        self.capacityBytes = capacityBytes
    }

    /// Blocks while full (unless closed); returns false once closed.
    func put(_ item: Inbound) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        var bytes = 0
        if case .frame(_, let payload, _) = item { bytes = payload.count }
        while !closed && bytes > 0 && framesHeld > 0
            && (framesHeld >= capacityFrames || frameBytes + bytes > capacityBytes) {
            condition.wait()
        }
        if closed { return false }
        items.append(item)
        if bytes > 0 { framesHeld += 1; frameBytes += bytes }
        condition.broadcast()
        return true
    }

    func request(_ r: ControlRequest) {
        condition.lock()
        requests.append(r)
        condition.broadcast()
        condition.unlock()
    }

    /// Up to `max` items, waiting up to `wait` seconds for the first one.
    func take(max: Int, wait: Double) -> (items: [Inbound], requests: [ControlRequest]) {
        condition.lock()
        defer { condition.unlock() }
        if wait > 0 && head == items.count && requests.isEmpty {
            _ = condition.wait(until: Date().addingTimeInterval(wait))
        }
        let n = min(max, items.count - head)
        let out = Array(items[head..<(head + n)])
        head += n
        for case .frame(_, let payload, _) in out { framesHeld -= 1; frameBytes -= payload.count }
        if head > 4096 || head == items.count { items.removeFirst(head); head = 0 }
        let r = requests
        requests.removeAll()
        if n > 0 { condition.broadcast() }
        return (out, r)
    }

    var depth: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count - head
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Rank 0's receiving thread: reads the detector's PULL socket and checks
/// every message, and answers the control port (REP) from the status the
/// main loop last posted, so `status` works even while a long iteration
/// or a stuck collective holds the main loop. It makes no MPI calls.
final class StreamReceiver: @unchecked Sendable {
    let queue: IngestQueue
    private let context: ZMQContext
    private let data: ZMQSocket
    /// The data socket's connection events (see `watchConnection`).
    private let dataEvents: ZMQSocket
    private let endpoint: String
    private let maxMessageBytes: Int64
    private var droppedAt: Date?
    private var reconnecting = false
    private let control: ZMQSocket?
    private let statusLock = NSLock()
    private var status: [String: Any] = [:]
    private var statusTime = Date()
    private let stopFlag = NSLock()
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    let controlEndpoint: String?
    private let log: (String) -> Void
    let heartbeatTimeout: Double
    private var stallReported = false

    init(connect endpoint: String, control controlAddress: String?, queue: IngestQueue, heartbeatTimeout: Double = 60,
         maxMessageBytes: Int64 = -1, log: @escaping (String) -> Void) throws {
        self.queue = queue
        self.log = log
        self.heartbeatTimeout = heartbeatTimeout
        context = try ZMQContext()
        data = try ZMQSocket(context, .pull)
        // A deep receive queue absorbs bursts; beyond it the sender blocks.
        try data.setReceiveHighWaterMark(1000)
        // A message too large to be a frame must not exhaust rank 0's memory before its header is read.
        try data.setMaxMessageSize(maxMessageBytes)
        dataEvents = try data.monitor([.disconnected, .connected, .connectDelayed, .connectRetried])
        self.endpoint = endpoint
        self.maxMessageBytes = maxMessageBytes
        try data.connect(endpoint)
        if let controlAddress {
            let c = try ZMQSocket(context, .rep)
            controlEndpoint = try c.bind(controlAddress)
            control = c
        } else {
            control = nil
            controlEndpoint = nil
        }
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

    /// The ranks move together, round by round: no round for this long means
    /// a rank is stuck (or lost) and the rest wait for it in a collective.
    /// Reported once per stall, in the log and in `status`.
    private func checkStall() {
        statusLock.lock()
        let age = Date().timeIntervalSince(statusTime)
        let report = age > heartbeatTimeout && !stallReported && !status.isEmpty
        if report { stallReported = true }
        let late = ((status["ranks"] as? [[String: Any]]) ?? []).compactMap { r -> Int? in
            guard let a = r["heartbeat_age_s"] as? Double, let rank = r["rank"] as? Int else { return nil }
            return a + age > heartbeatTimeout ? rank : nil
        }
        statusLock.unlock()
        if report {
            log(String(format: "stream: no round completed for %.0f s (heartbeat timeout %.0f s): ranks %@ are not responding or one of them is stuck; status reports 'stalled'",
                       age, heartbeatTimeout, late.map(String.init).joined(separator: ", ")))
        }
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
        _ = queue.put(.rejected(reason: reason, isFrame: false))
    }

    private func loop() {
        var sockets: [(socket: ZMQSocket, events: ZMQ.Events)] = [(data, .readable)]
        if let control { sockets.append((control, .readable)) }
        while !shouldStop {
            let ready: [ZMQ.Events]
            do {
                ready = try ZMQ.poll(sockets, timeoutMilliseconds: 100)
            } catch {
                log("ingest: polling failed: \(error)")
                continue
            }
            checkStall()
            watchConnection()
            if ready.count > 1, ready[1].contains(.readable), let control { serve(control) }
            if ready[0].contains(.readable) {
                guard let parts = try? data.receive(timeoutMilliseconds: 0) else { continue }
                let item = Self.check(parts.map(\.bytes), arrival: Date().timeIntervalSince1970)
                if !queue.put(item) { return }
            }
        }
    }

    /// Classifies one multipart message; never throws.
    static func check(_ parts: [[UInt8]], arrival: Double) -> Inbound {
        guard let first = parts.first, let topic = String(validating: first, as: UTF8.self) else {
            return .rejected(reason: "message: no topic", isFrame: false)
        }
        let header = parts.count > 1 ? parts[1] : []
        let decoder = JSONDecoder()
        switch topic {
        case "frame":
            guard parts.count == 3 else {
                return .rejected(reason: "frame: \(parts.count) parts, expected 3 (topic, header, pixels)", isFrame: true)
            }
            do {
                let h = try FrameHeader.decode(header)
                guard parts[2].count == h.payloadBytes else {
                    throw FrameError(field: "payload", problem: "\(parts[2].count) bytes, expected \(h.payloadBytes) for \(h.shapeY)x\(h.shapeX) \(h.dtype)")
                }
                return .frame(h, payload: parts[2], arrival: arrival)
            } catch {
                return .rejected(reason: "\(error)", isFrame: true)
            }
        case "start":
            do {
                return .start(try decoder.decode(ScanStart.self, from: Data(header)))
            } catch {
                return .rejected(reason: "start: the header is not a valid start header (\(describe(error)))", isFrame: false)
            }
        case "stop":
            do {
                return .stop(try decoder.decode(ScanStop.self, from: Data(header)))
            } catch {
                return .rejected(reason: "stop: the header is not a valid stop header (\(describe(error)))", isFrame: false)
            }
        case "abort":
            let id = (try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any])?["scan_id"] as? String
            return .abort(scanID: id)
        default:
            return .rejected(reason: "message: unknown topic '\(topic.prefix(32))'", isFrame: false)
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
        let reply = answer(parts.first?.bytes ?? [])
        let bytes = (try? JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys])).map { Array($0) } ?? Array("{}".utf8)
        do { try socket.send(bytes: [bytes]) } catch { log("control: cannot reply: \(error)") }
    }

    /// One control request (JSON) and its reply.
    func answer(_ request: [UInt8]) -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(request)) as? [String: Any],
              let command = object["command"] as? String else {
            return ["ok": false, "error": "a request is a JSON object with a 'command': status, abort, set or shutdown"]
        }
        switch command {
        case "status":
            statusLock.lock()
            var s = status
            let age = Date().timeIntervalSince(statusTime)
            statusLock.unlock()
            s["ok"] = true
            s["status_age_s"] = age
            s["stalled"] = age > heartbeatTimeout
            if var ranks = s["ranks"] as? [[String: Any]] {
                // Ages as of now, not as of the last round.
                for i in ranks.indices {
                    let a = (ranks[i]["heartbeat_age_s"] as? Double ?? 0) + age
                    ranks[i]["heartbeat_age_s"] = a
                    ranks[i]["late"] = a > heartbeatTimeout
                }
                s["ranks"] = ranks
            }
            s["backlog"] = queue.depth + ((s["backlog"] as? Int) ?? 0)
            return s
        case "abort":
            queue.request(.abort)
            return ["ok": true, "command": "abort"]
        case "shutdown":
            queue.request(.shutdown)
            return ["ok": true, "command": "shutdown"]
        case "set":
            var fields = object
            fields.removeValue(forKey: "command")
            let (settings, problems) = LiveSettings.parse(fields)
            guard let settings, !fields.isEmpty else {
                return ["ok": false, "error": "set: " + (problems.isEmpty ? "no parameter given" : problems.joined(separator: "; "))]
            }
            queue.request(.set(settings))
            return ["ok": true, "command": "set"]
        default:
            return ["ok": false, "error": "unknown command '\(command)': use status, abort, set or shutdown"]
        }
    }
}
