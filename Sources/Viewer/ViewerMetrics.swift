import Foundation
import Prometheus

/// The viewer's /metrics: the session's own text as it last published it on
/// `metrics`, followed by the viewer's gauges, so one scrape of the viewer
/// tells both what the session counts and whether it is still heard.
struct ViewerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let pages: Gauge
    private let up: Gauge
    private let age: Gauge
    /// Seconds without the session's metrics after which it is reported down.
    let silence: Double

    init(silence: Double) {
        self.silence = silence
        pages = registry.makeGauge(descriptor: .ns("viewer_pages", help: "Pages connected to this viewer's WebSocket."))
        up = registry.makeGauge(descriptor: .ns("viewer_session_up", help: "1 while the session's metrics arrive (within the viewer's --silence)."))
        age = registry.makeGauge(descriptor: .ns("viewer_session_metrics_age_seconds", help: "Seconds since the session last published its metrics (NaN: never)."))
    }

    func exposition(hub: LiveHub) -> [UInt8] {
        let session = hub.sessionMetrics()
        pages.set(Double(hub.stats()["clients"] as? Int ?? 0))
        up.set(session.map { $0.age < silence ? 1.0 : 0.0 } ?? 0.0)
        age.set(session?.age ?? .nan)
        return (session?.text ?? []) + registry.emitToBuffer()
    }
}
