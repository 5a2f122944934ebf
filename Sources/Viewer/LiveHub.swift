import Foundation

/// Fans the session's messages out to every connected page. Each page has
/// one slot per image kind and for the status: a newer message replaces one
/// not yet sent, so a slow or paused browser gets the newest picture late
/// instead of every picture ever later, and never holds anything up. Log
/// lines queue, bounded. A page that connects gets the latest of everything
/// and the recent log at once.
public final class LiveHub: @unchecked Sendable {
    public enum Outbound: Sendable {
        case text(String)
        case binary([UInt8])
    }

    private struct Client {
        var images: [String: [UInt8]] = [:]
        var status: String?
        var viewer: String?
        var logs: [String] = []
        var wake: AsyncStream<Void>.Continuation
    }

    private let lock = NSLock()
    private var clients: [Int: Client] = [:]
    private var nextID = 0
    private var images: [String: [UInt8]] = [:]
    private var status: String?
    private var viewer: String?
    private var recentLogs: [String] = []
    /// The session's latest `metrics` text and when it came.
    private var metrics: (text: [UInt8], at: Date)?
    private static let logKept = 500

    // What the viewer did, for /api/stats and the tests.
    private var imagesPosted = 0
    private var imagesReplaced = 0
    private var malformed = 0
    private var lastMalformed = ""
    private var drawLatencies: [Double] = []

    public init() {}

    /// A new page's slots, filled with the latest of everything, and the stream that wakes its writer.
    func connect() -> (id: Int, wake: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        lock.lock()
        defer { lock.unlock() }
        let id = nextID
        nextID += 1
        clients[id] = Client(images: images, status: status, viewer: viewer, logs: recentLogs, wake: continuation)
        continuation.yield()
        return (id, stream)
    }

    func disconnect(_ id: Int) {
        lock.lock()
        let client = clients.removeValue(forKey: id)
        lock.unlock()
        client?.wake.finish()
    }

    /// What is waiting for one page, oldest kind first, and the slots emptied.
    func take(_ id: Int) -> [Outbound] {
        lock.lock()
        defer { lock.unlock() }
        guard var c = clients[id] else { return [] }
        var out: [Outbound] = []
        if let v = c.viewer { out.append(.text(v)) }
        if let s = c.status { out.append(.text(s)) }
        out += c.logs.map { .text($0) }
        // aux before rec: the mask and scan images a `rec` is drawn with.
        for kind in ["aux", "rec"] { if let b = c.images[kind] { out.append(.binary(b)) } }
        c.viewer = nil
        c.status = nil
        c.logs.removeAll()
        c.images.removeAll()
        clients[id] = c
        return out
    }

    private func update(_ change: (inout Client) -> Void) {
        for id in clients.keys {
            change(&clients[id]!)
            clients[id]!.wake.yield()
        }
    }

    func post(status json: String) {
        lock.lock()
        status = json
        update { $0.status = json }
        lock.unlock()
    }

    func post(image kind: String, _ bytes: [UInt8]) {
        lock.lock()
        images[kind] = bytes
        imagesPosted += 1
        update { c in
            if c.images[kind] != nil { imagesReplaced += 1 }
            c.images[kind] = bytes
        }
        lock.unlock()
    }

    func post(log json: String) {
        lock.lock()
        recentLogs.append(json)
        if recentLogs.count > Self.logKept { recentLogs.removeFirst(recentLogs.count - Self.logKept) }
        update { c in
            c.logs.append(json)
            if c.logs.count > Self.logKept { c.logs.removeFirst(c.logs.count - Self.logKept) }
        }
        lock.unlock()
    }

    func post(viewer state: ViewerState) {
        guard let json = LiveMessage.json(["type": "viewer", "ok": state.ok, "message": state.message]) else { return }
        lock.lock()
        viewer = json
        update { $0.viewer = json }
        lock.unlock()
    }

    func post(metrics text: [UInt8]) {
        lock.lock()
        metrics = (text, Date())
        lock.unlock()
    }

    /// The session's latest metrics text and its age in seconds (nil: none came yet).
    public func sessionMetrics() -> (text: [UInt8], age: Double)? {
        lock.lock()
        defer { lock.unlock() }
        return metrics.map { ($0.text, Date().timeIntervalSince($0.at)) }
    }

    /// The endpoint the session reads frames from, from its latest status.
    func detectorEndpoint() -> String? {
        lock.lock()
        let json = status
        lock.unlock()
        guard let json, let o = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else { return nil }
        return o["detector"] as? String
    }

    func countMalformed(_ why: String) {
        lock.lock()
        malformed += 1
        lastMalformed = why
        let n = malformed
        lock.unlock()
        // Logged at the first, second, fourth, ... so a flood is seen without filling the log.
        if n & (n - 1) == 0 { FileHandle.standardError.write(Data("view: malformed message from the session (\(n) so far): \(why)\n".utf8)) }
    }

    /// A page's report of how long a published `rec` took to reach its screen.
    func recordDraw(latency: Double) {
        guard latency.isFinite, latency >= 0, latency < 3600 else { return }
        lock.lock()
        drawLatencies.append(latency)
        if drawLatencies.count > 10_000 { drawLatencies.removeFirst(drawLatencies.count - 10_000) }
        lock.unlock()
    }

    /// The viewer's counts: pages, images passed on and replaced unsent, malformed messages, draw latencies.
    public func stats() -> [String: Any] {
        lock.lock()
        defer { lock.unlock() }
        let sorted = drawLatencies.sorted()
        func quantile(_ q: Double) -> Double { sorted.isEmpty ? -1 : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] }
        return ["clients": clients.count, "images_posted": imagesPosted, "images_replaced_unsent": imagesReplaced,
                "malformed": malformed, "last_malformed": lastMalformed, "draws": sorted.count,
                "draw_latency_median_s": quantile(0.5), "draw_latency_p99_s": quantile(0.99),
                "draw_latency_max_s": sorted.last ?? -1, "resident_mb": Self.residentMegabytes()]
    }

    static func residentMegabytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
              let pages = text.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return -1 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1e6
    }
}
