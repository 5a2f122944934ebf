import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import WebAccess

/// `GET /metrics` for Prometheus, served by a session without a viewer. Beyond
/// loopback it serves HTTPS to holders of its token (a scrape job's
/// `authorization` credentials), as the viewer does.
public final class MetricsEndpoint: @unchecked Sendable {
    /// The address bound (a port 0 resolved), as a URL of /metrics.
    public let url: String
    private let task: Task<Void, Never>

    /// Starts serving; throws when the address cannot be bound.
    public init(address: ListenAddress, token: String?, tls: PageCertificate?, exposition: @escaping @Sendable () -> [UInt8]) throws {
        let router = Router()
        router.add(middleware: AccessGuard(access: PageAccess(token: token, https: tls != nil), service: "ns-mpirun metrics"))
        router.get("/metrics") { _, _ in Self.response(exposition()) }
        var logger = Logger(label: "ns.metrics")
        // Stopping cancels the server's task, which it logs as an error; a failure to bind is thrown here instead.
        logger.logLevel = .critical
        let bound = BoundPort()
        let app = Application(
            router: router,
            server: try tls.map { try .tls(.http1(), tlsConfiguration: $0.configuration) } ?? .http1(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "ns-mpirun metrics"),
            onServerRunning: { channel in bound.set(.success(channel.localAddress?.port ?? address.port)) },
            logger: logger)
        // run(), not runService(): the session handles its own signals.
        task = Task {
            do { try await app.run() } catch { bound.set(.failure(error)) }
        }
        switch bound.wait(seconds: 30) {
        case .success(let port):
            url = address.url(scheme: tls == nil ? "http" : "https", port: port) + "metrics"
        case .failure(let error):
            task.cancel()
            throw AccessError("cannot serve metrics on \(address.host):\(address.port): \(error)")
        case nil:
            task.cancel()
            throw AccessError("cannot serve metrics on \(address.host):\(address.port): the server did not start within 30 s")
        }
    }

    public func stop() { task.cancel() }

    deinit { task.cancel() }

    /// Prometheus's text exposition format, version 0.0.4.
    public static func response(_ text: [UInt8]) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}

/// The port a server bound, or why it could not, handed from its task to the starting thread.
private final class BoundPort: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Int, any Error>?
    private let ready = DispatchSemaphore(value: 0)

    func set(_ r: Result<Int, any Error>) {
        lock.lock()
        let first = result == nil
        if first { result = r }
        lock.unlock()
        if first { ready.signal() }
    }

    func wait(seconds: Double) -> Result<Int, any Error>? {
        guard ready.wait(timeout: .now() + seconds) == .success else { return nil }
        lock.lock()
        defer { lock.unlock() }
        return result
    }
}
