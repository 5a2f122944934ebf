import Foundation

/// The JSON header of a COSMIC-style `frame` message (see docs/PROTOCOL.md).
public struct FrameHeader: Codable, Equatable, Sendable {
    public var shapeY: Int
    public var shapeX: Int
    /// numpy-style element type: uint16, uint32, float32, float64.
    public var dtype: String
    /// "little" or "big".
    public var byteorder: String
    /// "C" (row-major) or "F" (column-major).
    public var order: String
    /// Sender's frame counter (darks and data share it).
    public var identifier: Int
    /// Position in the scan (data frames) or in the dark series.
    public var index: Int
    /// Scan position in m, when the sender knows it.
    public var posy: Double?
    public var posx: Double?

    enum CodingKeys: String, CodingKey {
        case shapeY = "shape_y", shapeX = "shape_x", dtype, byteorder, order, identifier, index, posy, posx
    }

    public init(shapeY: Int, shapeX: Int, dtype: String, byteorder: String = "little", order: String = "C",
                identifier: Int, index: Int, posy: Double? = nil, posx: Double? = nil) {
        self.shapeY = shapeY
        self.shapeX = shapeX
        self.dtype = dtype
        self.byteorder = byteorder
        self.order = order
        self.identifier = identifier
        self.index = index
        self.posy = posy
        self.posx = posx
    }

    public static let bytesPerElement = ["uint8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4, "float32": 4, "float64": 8]
}

/// A frame message that cannot be used, with the field at fault.
public struct FrameError: Error, CustomStringConvertible, Equatable, Sendable {
    public let field: String
    public let problem: String
    public var description: String { "frame \(field): \(problem)" }
    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }
}

extension FrameHeader {
    /// Parses and checks a header; throws a `FrameError` naming the bad field.
    public static func decode(_ json: some Collection<UInt8>) throws -> FrameHeader {
        let header: FrameHeader
        do {
            header = try JSONDecoder().decode(FrameHeader.self, from: Data(json))
        } catch let DecodingError.keyNotFound(key, _) {
            throw FrameError(field: key.stringValue, problem: "missing from the header")
        } catch let DecodingError.typeMismatch(_, context) {
            throw FrameError(field: context.codingPath.map(\.stringValue).joined(separator: "."), problem: "has the wrong type")
        } catch {
            throw FrameError(field: "header", problem: "is not valid JSON")
        }
        try header.validate()
        return header
    }

    public func validate() throws {
        guard shapeY > 0, shapeX > 0, shapeY <= 1 << 15, shapeX <= 1 << 15 else {
            throw FrameError(field: "shape", problem: "\(shapeY)x\(shapeX) is not a usable frame shape")
        }
        guard FrameHeader.bytesPerElement[dtype] != nil else {
            throw FrameError(field: "dtype", problem: "'\(dtype)' is not one of \(FrameHeader.bytesPerElement.keys.sorted())")
        }
        guard byteorder == "little" || byteorder == "big" else {
            throw FrameError(field: "byteorder", problem: "'\(byteorder)' is neither 'little' nor 'big'")
        }
        guard order == "C" || order == "F" else {
            throw FrameError(field: "order", problem: "'\(order)' is neither 'C' nor 'F'")
        }
        guard index >= 0 else { throw FrameError(field: "index", problem: "\(index) is negative") }
        for (name, value) in [("posy", posy), ("posx", posx)] {
            if let value, !value.isFinite { throw FrameError(field: name, problem: "is not finite") }
        }
    }

    public var payloadBytes: Int { shapeY * shapeX * FrameHeader.bytesPerElement[dtype, default: 0] }

    /// Converts a payload to row-major Float pixels, honouring dtype, byte order and memory order.
    public func pixels(from payload: UnsafeRawBufferPointer) throws -> [Float] {
        guard payload.count == payloadBytes else {
            throw FrameError(field: "payload", problem: "\(payload.count) bytes, expected \(payloadBytes) for \(shapeY)x\(shapeX) \(dtype)")
        }
        let n = shapeY * shapeX
        let big = byteorder == "big"
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { dst in
            switch dtype {
            case "uint8": for i in 0..<n { dst[i] = Float(payload[i]) }
            case "uint16": convert(payload, dst, UInt16.self, big) { Float($0) }
            case "int16": convert(payload, dst, UInt16.self, big) { Float(Int16(bitPattern: $0)) }
            case "uint32": convert(payload, dst, UInt32.self, big) { Float($0) }
            case "int32": convert(payload, dst, UInt32.self, big) { Float(Int32(bitPattern: $0)) }
            case "float32": convert(payload, dst, UInt32.self, big) { Float(bitPattern: $0) }
            default: convert(payload, dst, UInt64.self, big) { Float(Double(bitPattern: $0)) }
            }
        }
        if order == "F" {
            // Column-major: element (y, x) sits at x * shapeY + y.
            let columnMajor = out
            for y in 0..<shapeY { for x in 0..<shapeX { out[y * shapeX + x] = columnMajor[x * shapeY + y] } }
        }
        if let bad = out.firstIndex(where: { !$0.isFinite }) {
            throw FrameError(field: "payload", problem: "pixel (\(bad / shapeX), \(bad % shapeX)) is not finite")
        }
        return out
    }
}

@inline(__always)
private func convert<T: FixedWidthInteger>(_ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableBufferPointer<Float>,
                                           _: T.Type, _ bigEndian: Bool, _ value: (T) -> Float) {
    for i in 0..<dst.count {
        let raw = src.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
        dst[i] = value(bigEndian ? T(bigEndian: raw) : T(littleEndian: raw))
    }
}
