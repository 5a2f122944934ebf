import Foundation

/// A message from a session's publish port, checked and put in the form the
/// page reads. Images go to the browser as one binary WebSocket message
/// (BinaryMessage): the session's header with `type` and `parts`.
enum LiveMessage {
    case status(String)
    case image(kind: String, [UInt8])
    case log(String)
    /// The session's counters in Prometheus's text format, served again on /metrics.
    case metrics([UInt8])
    case malformed(String)

    /// The largest image part the viewer accepts, in elements (a 4096 x 4096 object).
    static let maxElements = 1 << 24
    /// The largest `metrics` text the viewer passes on (a session's is a few kilobytes).
    static let maxMetricsBytes = 4 << 20

    static func decode(_ parts: [[UInt8]]) -> LiveMessage {
        guard let first = parts.first, let topic = String(validating: first, as: UTF8.self) else {
            return .malformed("a message without a topic")
        }
        if topic == "metrics" {
            guard parts.count >= 2, parts[1].count <= maxMetricsBytes, String(validating: parts[1], as: UTF8.self) != nil else {
                return .malformed("metrics: not UTF-8 text of at most \(maxMetricsBytes >> 20) MiB")
            }
            return .metrics(parts[1])
        }
        guard parts.count >= 2, let header = (try? JSONSerialization.jsonObject(with: Data(parts[1]))) as? [String: Any] else {
            return .malformed("\(topic.prefix(32)): no JSON object header")
        }
        switch topic {
        case "status":
            return json(header.merging(["type": "status"]) { $1 }).map(LiveMessage.status) ?? .malformed("status: cannot be re-encoded")
        case "log":
            return json(header.merging(["type": "log"]) { $1 }).map(LiveMessage.log) ?? .malformed("log: cannot be re-encoded")
        case "rec":
            // The documented parts of `rec`, in order.
            let names = [("object", "complex64", "object_shape"), ("probe", "complex64", "probe_shape"),
                         ("frame", "float32", "frame_shape"), ("stxm", "float32", "stxm_shape")]
            guard parts.count == 2 + names.count else { return .malformed("rec: \(parts.count) parts, expected 6") }
            let declared = names.map { (name: $0.0, dtype: $0.1, shape: header[$0.2]) }
            return image("rec", header: header, declared: declared, bodies: Array(parts[2...]))
        case "aux":
            guard let list = header["parts"] as? [[String: Any]], list.count == parts.count - 2 else {
                return .malformed("aux: 'parts' does not list the \(parts.count - 2) bodies")
            }
            let declared = list.map { (name: $0["name"] as? String ?? "", dtype: $0["dtype"] as? String ?? "", shape: $0["shape"]) }
            return image("aux", header: header, declared: declared, bodies: Array(parts[2...]))
        default:
            return .malformed("unknown topic '\(topic.prefix(32))'")
        }
    }

    private static func image(_ kind: String, header: [String: Any], declared: [(name: String, dtype: String, shape: Any?)],
                              bodies: [[UInt8]]) -> LiveMessage {
        var checked: [BinaryMessage.Body] = []
        for (d, body) in zip(declared, bodies) {
            guard let size = BinaryMessage.itemSize[d.dtype] else { return .malformed("\(kind): \(d.name) has an unknown dtype '\(d.dtype.prefix(16))'") }
            guard let shape = d.shape as? [Int], !shape.isEmpty, shape.count <= 3, shape.allSatisfy({ $0 > 0 && $0 <= maxElements }) else {
                return .malformed("\(kind): \(d.name) has no valid shape")
            }
            let elements = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            guard elements <= maxElements, elements * size == body.count else {
                return .malformed("\(kind): \(d.name) holds \(body.count) bytes, its shape \(shape) of \(d.dtype) needs \(elements <= maxElements ? elements * size : -1)")
            }
            checked.append(BinaryMessage.Body(name: d.name, dtype: d.dtype, shape: shape, bytes: body))
        }
        guard let out = BinaryMessage.encode(header: header.merging(["type": kind]) { $1 }, bodies: checked) else {
            return .malformed("\(kind): header cannot be re-encoded")
        }
        return .image(kind: kind, out)
    }

    static func json(_ object: [String: Any]) -> String? {
        guard JSONSerialization.isValidJSONObject(object),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
