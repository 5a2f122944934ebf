import CZMQ

/// A failed ZeroMQ call with the endpoint it concerned and the system's reason.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int32
    public let reason: String

    public var description: String { "\(call) failed: \(reason)" }

    static func last(_ call: String) -> ZMQError {
        let e = zmq_errno()
        return ZMQError(call: call, code: e, reason: String(cString: zmq_strerror(e)))
    }
}

public enum ZMQ {
    public static var version: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    public struct Events: OptionSet, Sendable {
        public let rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: Int16(ZMQ_POLLIN))
        public static let writable = Events(rawValue: Int16(ZMQ_POLLOUT))
    }

    /// Waits up to `timeoutMilliseconds` (negative: forever) until one of the
    /// sockets is ready; returns what each one is ready for.
    public static func poll(_ items: [(socket: ZMQSocket, events: Events)], timeoutMilliseconds: Int) throws -> [Events] {
        var raw = items.map { zmq_pollitem_t(socket: $0.socket.handle, fd: 0, events: $0.events.rawValue, revents: 0) }
        while true {
            let rc = zmq_poll(&raw, Int32(raw.count), timeoutMilliseconds)
            if rc >= 0 { return raw.map { Events(rawValue: $0.revents) } }
            if zmq_errno() != nszmq_eintr() { throw ZMQError.last("zmq_poll") }
        }
    }
}

extension ZMQ {
    /// A new CURVE key pair, each key in Z85 (40 characters).
    public static func curveKeyPair() throws -> (publicKey: String, secretKey: String) {
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw ZMQError.last("zmq_curve_keypair (is libzmq built with CURVE?)") }
        func text(_ c: [CChar]) -> String { String(decoding: c.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return (text(pub), text(sec))
    }

    /// Whether `key` is a CURVE key in Z85 (40 characters that decode to 32 bytes).
    public static func isCurveKey(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var raw = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&raw, key) != nil
    }

    /// A 32-byte key (as a ZAP request carries it) in Z85.
    public static func z85(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, key, 32) != nil else { return nil }
        return String(decoding: text.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// One event from a socket monitor: what happened, and on which endpoint.
    public struct MonitorEvent: Sendable, Equatable {
        public struct Kind: OptionSet, Sendable {
            public let rawValue: UInt16
            public init(rawValue: UInt16) { self.rawValue = rawValue }
            public static let connected = Kind(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
            public static let connectDelayed = Kind(rawValue: UInt16(ZMQ_EVENT_CONNECT_DELAYED))
            public static let connectRetried = Kind(rawValue: UInt16(ZMQ_EVENT_CONNECT_RETRIED))
            public static let disconnected = Kind(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
            public static let handshakeSucceeded = Kind(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
        }
        public let kind: Kind
        public let endpoint: String

        /// A monitor message: [event (2 bytes) + value (4 bytes), endpoint]; nil if malformed.
        public init?(_ parts: [ZMQMessage]) {
            guard parts.count == 2, parts[0].bytes.count >= 2 else { return nil }
            let b = parts[0].bytes
            kind = Kind(rawValue: UInt16(b[0]) | UInt16(b[1]) << 8)
            endpoint = String(decoding: parts[1].bytes, as: UTF8.self)
        }
    }
}

/// A ZeroMQ context; sockets keep theirs alive, and it terminates after the last one closes.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int = 1) throws {
        guard let h = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        handle = h
        zmq_ctx_set(h, ZMQ_IO_THREADS, Int32(ioThreads))
    }

    deinit { zmq_ctx_term(handle) }
}
