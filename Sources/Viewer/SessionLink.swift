import Foundation
import RemoteAccess
import SwiftZMQ

/// The viewer's side of a running session: a thread subscribed to its
/// publish port, handing each message to the hub in the browser's form, and
/// requests to its control port. The session cannot tell it is there: a PUB
/// socket drops what a slow subscriber does not take, and control requests
/// are those any client may make.
public final class SessionLink: @unchecked Sendable {
    public let publishEndpoint: String
    public let controlEndpoint: String
    private let context: ZMQContext
    /// This viewer's keys where the session's ports speak CURVE.
    private let curve: CurveClient?
    private let hub: LiveHub
    /// Seconds without a status message after which the session is called unreachable.
    private let silence: Double
    private let stopLock = NSLock()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    /// The commands a page may send on; anything else is refused here.
    static let commands: Set<String> = ["status", "parameters", "abort", "set", "shutdown"]

    public init(publish: String, control: String, hub: LiveHub, silence: Double = 5, curve: CurveClient? = nil) throws {
        publishEndpoint = publish
        controlEndpoint = control
        self.curve = curve
        self.hub = hub
        self.silence = silence
        context = try ZMQContext()
    }

    public func start() throws {
        let socket = try ZMQSocket(context, .sub)
        // A few seconds of messages; beyond that ZeroMQ drops for this viewer alone.
        try socket.setReceiveHighWaterMark(64)
        try socket.setLinger(milliseconds: 0)
        // A message part larger than any picture a session publishes is refused by ZeroMQ before it is read.
        try socket.setMaxMessageSize(64 << 20)
        for topic in ["status", "rec", "aux", "log", "metrics"] { try socket.subscribe(topic) }
        try curve?.secure(socket)
        try socket.connect(publishEndpoint)
        started = true
        let t = Thread { [self] in
            run(socket)
            socket.close()
            finished.signal()
        }
        t.name = "ns-view-subscriber"
        t.start()
    }

    public func stop() {
        stopLock.lock()
        let first = !stopping
        stopping = true
        stopLock.unlock()
        if first && started { finished.wait() }
    }

    private var shouldStop: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopping
    }

    private var curveHint: String {
        guard curve != nil else { return "" }
        return ". Under CURVE the session lets this viewer in only if its --curve-clients folder holds the public key of "
            + "the viewer's --curve-secret, and --session-key must be the session's public key (the session logs each refused key)"
    }

    private func run(_ socket: ZMQSocket) {
        let began = Date()
        var lastStatus: Date?
        var reachable: Bool?
        while !shouldStop {
            if let parts = try? socket.receive(timeoutMilliseconds: 200) {
                let bytes = parts.map(\.bytes)
                switch LiveMessage.decode(bytes) {
                case .status(let json):
                    lastStatus = Date()
                    hub.post(status: json)
                case .image(let kind, let encoded):
                    hub.post(image: kind, encoded)
                case .log(let json):
                    hub.post(log: json)
                case .metrics(let text):
                    hub.post(metrics: text)
                case .malformed(let why):
                    hub.countMalformed(why)
                }
            }
            let quiet = Date().timeIntervalSince(lastStatus ?? began)
            let now = quiet < silence
            if now != reachable {
                reachable = now
                hub.post(viewer: now ? ViewerState(ok: true, message: "connected to the session at \(publishEndpoint)")
                    : ViewerState(ok: false, message: """
                        No status from the session at \(publishEndpoint) for \(Int(silence)) s. Is `ns-mpirun stream` \
                        running with --publish \(publishEndpoint) --control \(controlEndpoint)? Give the viewer the same \
                        endpoints: ns-mpirun view --session \(publishEndpoint),\(controlEndpoint)\(curveHint)
                        """))
            }
        }
    }

    /// One request to the session's control port and its reply; a command
    /// outside `commands`, or no answer within `timeout` seconds, is an error
    /// reply that says what to check.
    public func ask(_ request: [String: Any], timeout: Double = 3) -> [String: Any] {
        guard let command = request["command"] as? String, Self.commands.contains(command) else {
            return ["ok": false, "error": "a request is a JSON object with a 'command': \(Self.commands.sorted().joined(separator: ", "))"]
        }
        do {
            let body = try JSONSerialization.data(withJSONObject: request)
            // A REQ socket per request: one that timed out cannot be reused.
            let socket = try ZMQSocket(context, .req)
            defer { socket.close() }
            try socket.setLinger(milliseconds: 0)
            try curve?.secure(socket)
            try socket.connect(controlEndpoint)
            try socket.send(bytes: [Array(body)])
            guard let reply = try socket.receive(timeoutMilliseconds: Int(timeout * 1000)), let first = reply.first,
                  let object = try JSONSerialization.jsonObject(with: Data(first.bytes)) as? [String: Any] else {
                return ["ok": false, "error": "the session's control port \(controlEndpoint) did not answer in \(Int(timeout)) s: is the session running, and is this its --control endpoint?"]
            }
            return object
        } catch {
            return ["ok": false, "error": "control port \(controlEndpoint): \(error)"]
        }
    }
}

/// What the page shows about the viewer's own link to the session.
public struct ViewerState: Sendable, Equatable {
    public var ok: Bool
    public var message: String
}
