import Engines
import Foundation
import Ingest
import Parameters
import Pipeline
import Recon
import SessionMetrics
import SwiftZMQ

/// One message from the detector, checked by the receiving thread.
public enum Inbound: Sendable {
    case start(ScanStart)
    /// A frame whose header is valid and whose payload has the header's size.
    case frame(FrameHeader, payload: [UInt8], arrival: Double)
    case stop(ScanStop)
    case abort(scanID: String?)
    /// A message that cannot be used; the reason names the part at fault.
    case rejected(reason: String, kind: Rejection)
}

/// What kind of message was refused, and why, in the few words a metric's label takes.
public enum Rejection: Sendable, Equatable {
    case frame(FrameRejection)
    case message(MessageRejection)

    public var isFrame: Bool { if case .frame = self { true } else { false } }
}

extension SessionMetrics {
    func count(_ rejection: Rejection) {
        switch rejection {
        case .frame(let why): frameRejected(why)
        case .message(let why): messageRejected(why)
        }
    }
}

/// A request from the control port for the session's main loop.
public enum ControlRequest: Sendable, Equatable {
    case abort
    case shutdown
    case set(LiveSettings)
}

/// What a control request asks for, read without touching the session so the
/// parser can be fuzzed alone.
public enum ControlCommand: Equatable, Sendable {
    case status
    /// The declarations of what `set` takes.
    case parameters
    case request(ControlRequest)
    /// The reply's error text.
    case refused(String)

    public static func parse(_ request: [UInt8]) -> ControlCommand {
        guard let object = try? JSONSerialization.jsonObject(with: Data(request)) as? [String: Any],
              let command = object["command"] as? String else {
            return .refused("a request is a JSON object with a 'command': status, parameters, abort, set or shutdown")
        }
        switch command {
        case "status": return .status
        case "parameters": return .parameters
        case "abort": return .request(.abort)
        case "shutdown": return .request(.shutdown)
        case "set":
            var fields = object
            fields.removeValue(forKey: "command")
            let (settings, problems) = LiveSettings.parse(fields)
            guard let settings, !fields.isEmpty else {
                return .refused("set: " + (problems.isEmpty ? "no parameter given" : problems.joined(separator: "; ")))
            }
            return .request(.set(settings))
        default:
            return .refused("unknown command '\(command.prefix(64))': use status, parameters, abort, set or shutdown")
        }
    }
}

/// Parameters a running session accepts through the control port's `set`.
public struct LiveSettings: Codable, Sendable, Equatable {
    /// Iterations after the last frame of a scan.
    public var finalIterations: Int?
    /// A registered engine's name (another kind takes over the model), and RAAR's beta.
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
        engine("algorithm", doc: "The engine, from the next iteration."),
        engine("beta", doc: "RAAR relaxation."),
        ParameterSpec("publish_every", .integer(0...1_000_000), default: nil, doc: "Iterations between published reconstructions (0: at the end only)."),
    ]

    /// An engine option as `set` takes it: its declaration, with no default.
    private static func engine(_ name: String, doc: String) -> ParameterSpec {
        guard var spec = EngineOptions.parameters.first(where: { $0.name == name }) else {
            preconditionFailure("the engine declares no parameter '\(name)'")
        }
        spec.defaultValue = nil
        spec.doc = doc
        return spec
    }

    /// The declarations as the control port's `parameters` reply gives them.
    public static var declarations: [[String: Any]] { parameters.map(\.declaration) }

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

    /// Problems, each naming the field, by the declarations `set` checks
    /// requests with; empty when the settings can be applied.
    public func problems() -> [String] {
        let given: [(String, ParameterValue?)] = [
            ("final_iterations", finalIterations.map { .integer($0) }), ("algorithm", algorithm.map { .string($0) }),
            ("beta", beta.map { .number($0) }), ("publish_every", publishEvery.map { .integer($0) }),
        ]
        return given.compactMap { name, value in
            guard let value, let spec = Self.parameters.first(where: { $0.name == name }),
                  case .invalid(let problem) = spec.check(value) else { return nil }
            return "\(name): \(problem)"
        }
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

    /// Adds `item` unless the queue is full; never waits.
    func tryPut(_ item: Inbound) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        var bytes = 0
        if case .frame(_, let payload, _) = item { bytes = payload.count }
        if bytes > 0 && framesHeld > 0 && (framesHeld >= capacityFrames || frameBytes + bytes > capacityBytes) { return false }
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
