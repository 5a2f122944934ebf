import CZMQ

/// A ZeroMQ socket. Like ZeroMQ's own sockets it belongs to one thread at a time.
public final class ZMQSocket: @unchecked Sendable {
    public enum Kind: Sendable {
        case push, pull, pub, sub, req, rep, router, dealer, pair

        var raw: Int32 {
            switch self {
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .pub: ZMQ_PUB
            case .sub: ZMQ_SUB
            case .req: ZMQ_REQ
            case .rep: ZMQ_REP
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .pair: ZMQ_PAIR
            }
        }
    }

    public let kind: Kind
    private let context: ZMQContext
    private(set) var handle: UnsafeMutableRawPointer?

    public init(_ context: ZMQContext, _ kind: Kind) throws {
        guard let h = zmq_socket(context.handle, kind.raw) else { throw ZMQError.last("zmq_socket(\(kind))") }
        self.context = context
        self.kind = kind
        handle = h
        // Unsent messages must not keep the process alive at exit.
        try setOption(ZMQ_LINGER, 0, "ZMQ_LINGER")
    }

    deinit { close() }

    /// Closes the socket; pending outgoing messages wait up to the linger time.
    public func close() {
        if let h = handle { zmq_close(h) }
        handle = nil
    }

    private func live(_ call: String) throws -> UnsafeMutableRawPointer {
        guard let h = handle else { throw ZMQError(call: call, code: 0, reason: "the socket is closed") }
        return h
    }

    /// Binds and returns the actual endpoint (the port chosen for "tcp://127.0.0.1:*").
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        let h = try live("zmq_bind(\(endpoint))")
        guard zmq_bind(h, endpoint) == 0 else { throw ZMQError.last("zmq_bind(\(endpoint))") }
        return try lastEndpoint
    }

    public func connect(_ endpoint: String) throws {
        let h = try live("zmq_connect(\(endpoint))")
        guard zmq_connect(h, endpoint) == 0 else { throw ZMQError.last("zmq_connect(\(endpoint))") }
    }

    public var lastEndpoint: String {
        get throws {
            let h = try live("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            var buffer = [CChar](repeating: 0, count: 256)
            var size = buffer.count
            guard zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else {
                throw ZMQError.last("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Reports this socket's connection events on a PAIR socket the caller
    /// polls (read them with `ZMQ.MonitorEvent(_:)`).
    public func monitor(_ events: ZMQ.MonitorEvent.Kind) throws -> ZMQSocket {
        let h = try live("zmq_socket_monitor")
        let address = "inproc://ns-monitor-\(UInt(bitPattern: h))"
        guard zmq_socket_monitor(h, address, Int32(events.rawValue)) == 0 else { throw ZMQError.last("zmq_socket_monitor(\(address))") }
        let pair = try ZMQSocket(context, .pair)
        try pair.connect(address)
        return pair
    }

    // MARK: Options

    private func setOption(_ option: Int32, _ value: Int32, _ name: String) throws {
        let h = try live("zmq_setsockopt(\(name))")
        var v = value
        guard zmq_setsockopt(h, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(\(name) = \(value))")
        }
    }

    /// Milliseconds that unsent messages may delay close (-1: forever).
    public func setLinger(milliseconds: Int) throws { try setOption(ZMQ_LINGER, Int32(milliseconds), "ZMQ_LINGER") }
    /// Queued outgoing messages per peer before sends block or drop (0: unlimited).
    public func setSendHighWaterMark(_ messages: Int) throws { try setOption(ZMQ_SNDHWM, Int32(messages), "ZMQ_SNDHWM") }
    public func setReceiveHighWaterMark(_ messages: Int) throws { try setOption(ZMQ_RCVHWM, Int32(messages), "ZMQ_RCVHWM") }
    /// Milliseconds a blocking send may wait (-1: forever).
    public func setSendTimeout(milliseconds: Int) throws { try setOption(ZMQ_SNDTIMEO, Int32(milliseconds), "ZMQ_SNDTIMEO") }

    /// The largest message part a peer may send, in bytes (-1: no limit): a
    /// peer that sends a larger one is disconnected before it is read in.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        let h = try live("zmq_setsockopt(ZMQ_MAXMSGSIZE)")
        var v = bytes
        guard zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQError.last("zmq_setsockopt(ZMQ_MAXMSGSIZE = \(bytes))")
        }
    }

    private func setOption(_ option: Int32, text: String, _ name: String) throws {
        let h = try live("zmq_setsockopt(\(name))")
        let bytes = Array(text.utf8)
        guard zmq_setsockopt(h, option, bytes, bytes.count) == 0 else { throw ZMQError.last("zmq_setsockopt(\(name))") }
    }

    /// CURVE (libzmq's built-in encryption and authentication): this
    /// socket is a server with `secretKey` (Z85, 40 characters); set before bind.
    public func setCurveServer(secretKey: String) throws {
        try setOption(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
        try setOption(ZMQ_CURVE_SECRETKEY, text: secretKey, "ZMQ_CURVE_SECRETKEY")
    }

    /// CURVE: this socket is a client of the server whose public key is
    /// `serverKey`, with its own key pair; set before connect.
    public func setCurveClient(serverKey: String, publicKey: String, secretKey: String) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, text: serverKey, "ZMQ_CURVE_SERVERKEY")
        try setOption(ZMQ_CURVE_PUBLICKEY, text: publicKey, "ZMQ_CURVE_PUBLICKEY")
        try setOption(ZMQ_CURVE_SECRETKEY, text: secretKey, "ZMQ_CURVE_SECRETKEY")
    }

    /// The ZAP domain this socket's connections are authenticated in (the
    /// handler sees it; with NULL security it makes libzmq ask the handler).
    public func setZAPDomain(_ domain: String) throws {
        try setOption(ZMQ_ZAP_DOMAIN, text: domain, "ZMQ_ZAP_DOMAIN")
    }

    /// SUB sockets: receive messages whose first part starts with `prefix` ("" for all).
    public func subscribe(_ prefix: String) throws {
        let h = try live("zmq_setsockopt(ZMQ_SUBSCRIBE)")
        let bytes = Array(prefix.utf8)
        guard zmq_setsockopt(h, ZMQ_SUBSCRIBE, bytes, bytes.count) == 0 else {
            throw ZMQError.last("zmq_setsockopt(ZMQ_SUBSCRIBE \"\(prefix)\")")
        }
    }

    // MARK: Transfer

    /// Sends one multipart message; the parts are handed over to ZeroMQ (and left empty).
    public func send(_ parts: [ZMQMessage]) throws {
        let h = try live("zmq_msg_send")
        guard !parts.isEmpty else { throw ZMQError(call: "zmq_msg_send", code: 0, reason: "a message needs at least one part") }
        for (i, part) in parts.enumerated() {
            let flags = i < parts.count - 1 ? ZMQ_SNDMORE : 0
            while zmq_msg_send(part.msg, h, flags) < 0 {
                if zmq_errno() == nszmq_eintr() { continue }
                throw ZMQError.last("zmq_msg_send(part \(i + 1) of \(parts.count))")
            }
        }
    }

    /// Sends byte parts (each copied once into a ZeroMQ message).
    public func send(bytes parts: [[UInt8]]) throws {
        try send(parts.map { try ZMQMessage(bytes: $0) })
    }

    /// Receives one whole multipart message; nil when nothing arrived within
    /// `timeoutMilliseconds` (nil timeout: wait forever).
    public func receive(timeoutMilliseconds: Int? = nil) throws -> [ZMQMessage]? {
        let h = try live("zmq_msg_recv")
        if let timeoutMilliseconds {
            let ready = try ZMQ.poll([(self, .readable)], timeoutMilliseconds: timeoutMilliseconds)
            if !ready[0].contains(.readable) { return nil }
        }
        var parts: [ZMQMessage] = []
        while true {
            let part = ZMQMessage()
            while zmq_msg_recv(part.msg, h, 0) < 0 {
                if zmq_errno() == nszmq_eintr() { continue }
                throw ZMQError.last("zmq_msg_recv(part \(parts.count + 1))")
            }
            parts.append(part)
            if zmq_msg_more(part.msg) == 0 { return parts }
        }
    }
}
