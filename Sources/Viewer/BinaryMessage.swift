import Foundation

/// The one binary form the page reads, for live messages over the WebSocket
/// and for opened files over HTTP: a little-endian UInt32 header length,
/// the JSON header (padded with spaces to a multiple of 4 bytes), then the
/// bodies, each padded to a multiple of 4 so the page views them as typed
/// arrays without copying. The header gets `parts`: name, dtype, shape,
/// offset and bytes of each body, offsets from the bodies' start.
enum BinaryMessage {
    struct Body {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    static let itemSize = ["complex64": 8, "float32": 4, "uint8": 1]

    /// nil when the header cannot be written as JSON.
    static func encode(header: [String: Any], bodies: [Body]) -> [UInt8]? {
        var described: [[String: Any]] = []
        var offset = 0
        for b in bodies {
            described.append(["name": b.name, "dtype": b.dtype, "shape": b.shape, "offset": offset, "bytes": b.bytes.count])
            offset += (b.bytes.count + 3) & ~3
        }
        var h = header
        h["parts"] = described
        guard JSONSerialization.isValidJSONObject(h),
              var text = try? JSONSerialization.data(withJSONObject: h, options: [.sortedKeys]).map({ $0 }) else { return nil }
        while text.count % 4 != 0 { text.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(4 + text.count + offset)
        withUnsafeBytes(of: UInt32(text.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: text)
        for b in bodies {
            out.append(contentsOf: b.bytes)
            out.append(contentsOf: [UInt8](repeating: 0, count: ((b.bytes.count + 3) & ~3) - b.bytes.count))
        }
        return out
    }

    static func body<T>(_ name: String, dtype: String, shape: [Int], values: [T]) -> Body {
        Body(name: name, dtype: dtype, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
    }
}
