import Foundation
import SwiftZMQ

/// ZeroMQ's authentication hook (ZAP, rfc.zeromq.org/spec/27) for one
/// context: libzmq asks it about every CURVE handshake on that context's
/// sockets, and it lets in the keys of one folder of public certificates.
/// The peer's public key becomes the connection's "User-Id", which each
/// received message carries, so a server can tell who asked for what.
/// Without a handler libzmq would let in any client that knows the
/// server's public key, and that key is public.
public final class ZAPAuthenticator: @unchecked Sendable {
    public let clients: AllowedKeys
    private let socket: ZMQSocket
    private let log: (String) -> Void
    private let stopLock = NSLock()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var refusals: [String: (count: Int, logged: Date)] = [:]
    private let countLock = NSLock()
    private var refusedTotal = 0

    /// Binds the context's handler; call before any socket of `context` binds or connects.
    public init(context: ZMQContext, clients: AllowedKeys, log: @escaping (String) -> Void) throws {
        self.clients = clients
        self.log = log
        socket = try ZMQSocket(context, .rep)
        try socket.bind("inproc://zeromq.zap.01")
        let t = Thread { [self] in
            while !shouldStop {
                if let request = try? socket.receive(timeoutMilliseconds: 100) {
                    let reply = answer(request.map(\.bytes))
                    try? socket.send(bytes: reply)
                }
            }
            socket.close()
            finished.signal()
        }
        t.name = "ns-zap"
        t.start()
    }

    deinit { stop() }

    public func stop() {
        stopLock.lock()
        let first = !stopping
        stopping = true
        stopLock.unlock()
        if first { finished.wait() }
    }

    private var shouldStop: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopping
    }

    /// Connections refused so far.
    public var refused: Int {
        countLock.lock()
        defer { countLock.unlock() }
        return refusedTotal
    }

    /// A ZAP request: version, request id, domain, address, routing id,
    /// mechanism, credentials; the reply: version, request id, status code,
    /// status text, user id, metadata.
    func answer(_ request: [[UInt8]]) -> [[UInt8]] {
        guard request.count >= 6 else { return [] }
        let id = request[1]
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), id, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard String(decoding: request[0], as: UTF8.self) == "1.0" else { return reply("500", "unsupported ZAP version") }
        let address = String(decoding: request[3], as: UTF8.self)
        let mechanism = String(decoding: request[5], as: UTF8.self)
        guard mechanism == "CURVE", request.count == 7, let key = ZMQ.z85(request[6]) else {
            refuse("a \(mechanism.prefix(16)) client (no CURVE key)", from: address, id: mechanism)
            return reply("400", "CURVE with a listed key is required")
        }
        guard clients.name(of: key) != nil else {
            refuse("key \(CurveCertificate.keyID(key)) (not in \(clients.directory))", from: address, id: key)
            return reply("400", "this key is not allowed")
        }
        return reply("200", "OK", user: key)
    }

    /// Logged once a minute per key at most, with how many tries since: a
    /// client retrying every 100 ms must not flood the log.
    private func refuse(_ what: String, from address: String, id: String) {
        countLock.lock()
        refusedTotal += 1
        if refusals.count > 1000 { refusals.removeAll() }
        var entry = refusals[id] ?? (0, .distantPast)
        entry.count += 1
        let due = Date().timeIntervalSince(entry.logged) >= 60
        let count = entry.count
        if due { entry = (0, Date()) }
        refusals[id] = entry
        countLock.unlock()
        if due { log("security: refused a connection from \(address): \(what)\(count > 1 ? " (\(count) tries since the last report)" : "")") }
    }
}
