import Foundation
import Ingest
import Testing

@Suite struct FrameHeaderTests {
    let cosmic = #"{"shape_y": 2, "shape_x": 3, "dtype": "uint16", "byteorder": "little", "order": "C", "identifier": 17, "index": 4, "posy": 1.5e-6, "posx": -2e-6}"#

    @Test func cosmicHeaderDecodes() throws {
        let h = try FrameHeader.decode(Array(cosmic.utf8))
        #expect(h == FrameHeader(shapeY: 2, shapeX: 3, dtype: "uint16", identifier: 17, index: 4, posy: 1.5e-6, posx: -2e-6))
        #expect(h.payloadBytes == 12)
    }

    @Test func pixelsHonourTypeByteOrderAndMemoryOrder() throws {
        var h = FrameHeader(shapeY: 2, shapeX: 3, dtype: "uint16", identifier: 0, index: 0)
        let values: [UInt16] = [1, 2, 3, 400, 500, 65535]
        let little = values.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        #expect(try little.withUnsafeBytes { try h.pixels(from: $0) } == values.map(Float.init))
        h.byteorder = "big"
        let big = values.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
        #expect(try big.withUnsafeBytes { try h.pixels(from: $0) } == values.map(Float.init))
        // Column-major: the same 2x3 image stored column by column.
        h.byteorder = "little"
        h.order = "F"
        let columns: [UInt16] = [1, 400, 2, 500, 3, 65535]
        let fortran = columns.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        #expect(try fortran.withUnsafeBytes { try h.pixels(from: $0) } == values.map(Float.init))
        h = FrameHeader(shapeY: 1, shapeX: 2, dtype: "float64", identifier: 0, index: 0)
        let doubles: [Double] = [0.5, -3]
        #expect(try doubles.withUnsafeBytes { try h.pixels(from: $0) } == [0.5, -3])
    }

    @Test(arguments: [
        (#"{"shape_y": 2, "dtype": "uint16", "byteorder": "little", "order": "C", "identifier": 1, "index": 0}"#, "shape_x"),
        (#"{"shape_y": 2, "shape_x": "3", "dtype": "uint16", "byteorder": "little", "order": "C", "identifier": 1, "index": 0}"#, "shape_x"),
        (#"{"shape_y": 2, "shape_x": 3, "dtype": "complex64", "byteorder": "little", "order": "C", "identifier": 1, "index": 0}"#, "dtype"),
        (#"{"shape_y": 2, "shape_x": 3, "dtype": "uint16", "byteorder": "middle", "order": "C", "identifier": 1, "index": 0}"#, "byteorder"),
        (#"{"shape_y": 2, "shape_x": 3, "dtype": "uint16", "byteorder": "little", "order": "Z", "identifier": 1, "index": 0}"#, "order"),
        (#"{"shape_y": 0, "shape_x": 3, "dtype": "uint16", "byteorder": "little", "order": "C", "identifier": 1, "index": 0}"#, "shape"),
        (#"{"shape_y": 2, "shape_x": 3, "dtype": "uint16", "byteorder": "little", "order": "C", "identifier": 1, "index": -1}"#, "index"),
        (#"{"shape_y": 2, "shape_x": 3, "#, "header"),
    ])
    func malformedHeadersNameTheField(json: String, field: String) throws {
        let error = try #require(throws: FrameError.self) { try FrameHeader.decode(Array(json.utf8)) }
        #expect(error.field == field)
    }

    @Test func payloadProblemsAreCaught() throws {
        let h = FrameHeader(shapeY: 2, shapeX: 2, dtype: "float32", identifier: 0, index: 0)
        let short = try #require(throws: FrameError.self) { try [UInt8](repeating: 0, count: 15).withUnsafeBytes { try h.pixels(from: $0) } }
        #expect(short.problem.contains("15 bytes, expected 16"))
        let withNaN: [Float] = [1, .nan, 3, 4]
        let nan = try #require(throws: FrameError.self) { try withNaN.withUnsafeBytes { try h.pixels(from: $0) } }
        #expect(nan.problem.contains("(0, 1) is not finite"))
    }
}
