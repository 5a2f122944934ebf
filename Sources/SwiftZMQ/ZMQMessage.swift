import CZMQ

/// One message part, owned by ZeroMQ's allocator: received parts are read in
/// place and parts built here are handed to ZeroMQ on send without a copy.
public final class ZMQMessage: @unchecked Sendable {
    let msg: UnsafeMutablePointer<zmq_msg_t>

    /// An empty part (a receive target, or a zero-length frame).
    public init() {
        msg = .allocate(capacity: 1)
        zmq_msg_init(msg)
    }

    /// A part of `count` bytes to be filled through `withUnsafeMutableBytes`.
    public init(count: Int) throws {
        msg = .allocate(capacity: 1)
        if zmq_msg_init_size(msg, count) != 0 {
            msg.deallocate()
            throw ZMQError.last("zmq_msg_init_size(\(count))")
        }
    }

    public convenience init(bytes: some Collection<UInt8>) throws {
        try self.init(count: bytes.count)
        withUnsafeMutableBytes { dst in dst.copyBytes(from: bytes) }
    }

    public convenience init(string: String) throws {
        try self.init(bytes: Array(string.utf8))
    }

    /// A part that points at `bytes` without copying; `owner` (which must keep
    /// the bytes valid) is retained until ZeroMQ has sent them.
    public init(noCopy bytes: UnsafeRawBufferPointer, owner: AnyObject) throws {
        msg = .allocate(capacity: 1)
        let retained = Unmanaged.passRetained(owner).toOpaque()
        let rc = zmq_msg_init_data(msg, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, { _, hint in
            if let hint { Unmanaged<AnyObject>.fromOpaque(hint).release() }
        }, retained)
        if rc != 0 {
            Unmanaged<AnyObject>.fromOpaque(retained).release()
            msg.deallocate()
            throw ZMQError.last("zmq_msg_init_data")
        }
    }

    deinit {
        zmq_msg_close(msg)
        msg.deallocate()
    }

    public var count: Int { zmq_msg_size(msg) }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(msg), count: count))
    }

    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: zmq_msg_data(msg), count: count))
    }

    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public var string: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    /// A received part's metadata ("User-Id": what the ZAP handler said of
    /// the peer; "Peer-Address"); nil where the connection carries none.
    public func property(_ name: String) -> String? {
        guard let value = zmq_msg_gets(msg, name) else { return nil }
        return String(cString: value)
    }
}
