import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import SessionMetrics
import WebAccess
import Logging

/// The viewer's HTTP side: the pages and their assets, the control requests
/// the live page makes (passed on to the session's control port), the
/// WebSocket that carries the live messages, and the files page's requests.
/// Either side may be absent: a viewer of files only, or of a session only.
public struct ViewerServer: Sendable {
    public let host: String
    public let port: Int
    public let link: SessionLink?
    public let hub: LiveHub
    public let files: ResultFiles?
    public let simulator = ScanSimulator()
    public let access: PageAccess
    /// HTTPS when given: the certificate chain and key, as PEM files.
    public let tls: PageCertificate?
    let assets: ViewerAssets
    let metrics: ViewerMetrics

    public init(host: String, port: Int, link: SessionLink?, hub: LiveHub, files: ResultFiles? = nil,
                token: String? = nil, tls: PageCertificate? = nil, silence: Double = 5) throws {
        self.host = host
        self.port = port
        self.link = link
        self.hub = hub
        self.files = files
        self.tls = tls
        access = PageAccess(token: token, https: tls != nil)
        assets = try ViewerAssets.load()
        metrics = ViewerMetrics(silence: silence)
    }

    /// Serves until SIGTERM or SIGINT; `ready` gets the address actually bound (a port 0 resolved).
    public func run(ready: @escaping @Sendable (String) -> Void) async throws {
        let router = Router(context: BasicWebSocketRequestContext.self)
        router.add(middleware: AccessGuard(access: access, service: "ns-mpirun view"))
        let assets = self.assets, files = self.files, link = self.link, hub = self.hub, simulator = self.simulator
        router.get("/") { _, _ in link == nil ? Response.redirect(to: "/files") : assets.response("index.html") }
        router.get("/files") { _, _ in assets.response("files.html") }
        router.get("/assets/:name") { _, context in
            assets.response(context.parameters.get("name") ?? "")
        }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/api/stats") { _, _ in Self.json(hub.stats()) }
        let metrics = self.metrics
        router.get("/metrics") { _, _ in MetricsEndpoint.response(metrics.exposition(hub: hub)) }
        router.get("/api/session") { _, _ in
            var o: [String: Any] = ["files": files != nil]
            if let link { o["publish"] = link.publishEndpoint; o["control"] = link.controlEndpoint }
            return Self.json(o)
        }
        router.post("/api/control") { request, _ in
            guard let body = try await Self.jsonBody(request, limit: 64 << 10) else { return Self.notJSON }
            guard let link else { return Self.json(["ok": false, "error": "this viewer was started without --session"]) }
            let reply = await Self.detached { link.answer(body) }
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: reply)))
        }
        router.post("/api/simulate") { request, _ in
            guard let body = try await Self.jsonBody(request, limit: 16 << 10) else { return Self.notJSON }
            guard let o = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
                return Self.json(["ok": false, "error": "simulate: the body is not a JSON object"])
            }
            return Self.json(simulator.start(o, detector: hub.detectorEndpoint()))
        }
        router.get("/api/simulate") { _, _ in Self.json(simulator.state()) }
        addFileRoutes(router)
        router.ws("/ws") { _, _ in .upgrade() } onUpgrade: { inbound, outbound, _ in
            let (id, wake) = hub.connect()
            defer { hub.disconnect(id) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in wake {
                        for message in hub.take(id) {
                            switch message {
                            case .text(let s): try await outbound.write(.text(s))
                            case .binary(let b): try await outbound.write(.binary(ByteBuffer(bytes: b)))
                            }
                        }
                    }
                }
                // The page reports when it drew a `rec`; the socket closing ends the writer too.
                for try await message in inbound.messages(maxSize: 1 << 16) {
                    if case .text(let text) = message,
                       let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
                       let latency = o["draw_latency_s"] as? Double {
                        hub.recordDraw(latency: latency)
                    }
                }
                group.cancelAll()
            }
        }
        var logger = Logger(label: "ns.view")
        logger.logLevel = .warning
        let plain = HTTPServerBuilder.http1WebSocketUpgrade(webSocketRouter: router)
        let token = access.token, scheme = tls == nil ? "http" : "https"
        let app = Application(
            router: router,
            server: try tls.map { try .tls(plain, tlsConfiguration: $0.configuration) } ?? plain,
            configuration: .init(address: .hostname(host, port: port), serverName: "ns-mpirun view"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                ready("\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(bound)/" + (token.map { "?token=\($0)" } ?? ""))
            },
            logger: logger)
        try await app.runService()
    }

    /// A state-changing request's body, or nil when it is not sent as JSON: a cross-site
    /// form cannot send JSON without the browser asking first, which is never answered.
    static func jsonBody(_ request: Request, limit: Int) async throws -> Data? {
        guard request.headers[.contentType]?.hasPrefix("application/json") == true else { return nil }
        return Data(buffer: try await request.body.collect(upTo: limit))
    }

    static var notJSON: Response { json(["ok": false, "error": "send the request as application/json"], status: .unsupportedMediaType) }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Blocking work (a ZeroMQ request) off the server's threads.
    static func detached<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { c in
            DispatchQueue.global().async { c.resume(returning: work()) }
        }
    }
}

extension SessionLink {
    /// A page's request body to the control port, and the reply as JSON.
    func answer(_ body: Data) -> Data {
        let reply: [String: Any]
        if let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] {
            reply = ask(object)
        } else {
            reply = ["ok": false, "error": "the body is not a JSON object"]
        }
        return (try? JSONSerialization.data(withJSONObject: reply, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}
