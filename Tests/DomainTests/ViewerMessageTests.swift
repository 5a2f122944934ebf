import Foundation
import Testing
@testable import Viewer

/// What the viewer passes from a session's publish port to the pages.
struct ViewerMessageTests {
    func json(_ o: [String: Any]) -> [UInt8] { Array(try! JSONSerialization.data(withJSONObject: o)) }

    func rec(object: Int = 4, probe: Int = 2, frame: Int = 3, objectBytes: Int? = nil) -> [[UInt8]] {
        let header: [String: Any] = ["scan_id": "s", "iteration": 7, "object_shape": [object, object], "probe_shape": [probe, probe],
                                     "frame_shape": [frame, frame], "stxm_shape": [1, 3], "published_at": 1.5]
        return [Array("rec".utf8), json(header), [UInt8](repeating: 1, count: objectBytes ?? object * object * 8),
                [UInt8](repeating: 2, count: probe * probe * 8), [UInt8](repeating: 3, count: frame * frame * 4), [UInt8](repeating: 4, count: 12)]
    }

    @Test func anImageReachesThePageAsAlignedTypedArrays() throws {
        guard case .image(let kind, let bytes) = LiveMessage.decode(rec()) else { Issue.record("not an image"); return }
        #expect(kind == "rec")
        let n = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
        #expect(n % 4 == 0)
        let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[4..<(4 + n)])) as? [String: Any])
        #expect(header["type"] as? String == "rec" && header["iteration"] as? Int == 7 && header["published_at"] as? Double == 1.5)
        let parts = try #require(header["parts"] as? [[String: Any]])
        #expect(parts.map { $0["name"] as? String ?? "" } == ["object", "probe", "frame", "stxm"])
        for (p, fill) in zip(parts, [UInt8(1), 2, 3, 4]) {
            let offset = try #require(p["offset"] as? Int), count = try #require(p["bytes"] as? Int)
            #expect(offset % 4 == 0)
            #expect(bytes[(4 + n + offset)..<(4 + n + offset + count)].allSatisfy { $0 == fill }, "\(p)")
        }
        // The 3x3 float32 frame (36 bytes) and the 12-byte stxm end the message.
        #expect(bytes.count == 4 + n + 128 + 32 + 36 + 12)
    }

    @Test func malformedMessagesAreNamedAndNothingHugeIsAllocated() {
        func why(_ parts: [[UInt8]]) -> String {
            if case .malformed(let w) = LiveMessage.decode(parts) { return w }
            return "decoded"
        }
        #expect(why(rec(objectBytes: 100)).contains("object holds 100 bytes"))
        #expect(why(Array(rec().dropLast())).contains("5 parts, expected 6"))
        #expect(why([Array("rec".utf8), Array("not json".utf8)]).contains("no JSON object header"))
        #expect(why([Array("surprise".utf8), json([:])]).contains("unknown topic 'surprise'"))
        #expect(why([[0xff, 0xfe]]).contains("without a topic"))
        var huge = rec()
        huge[1] = json(["object_shape": [1 << 40, 1 << 40], "probe_shape": [2, 2], "frame_shape": [3, 3], "stxm_shape": [1, 3]])
        #expect(why(huge).contains("object has no valid shape"))
        let aux: [[UInt8]] = [Array("aux".utf8), json(["parts": [["name": "mask", "dtype": "int64", "shape": [2, 2]]]]), [1, 2, 3, 4]]
        #expect(why(aux).contains("unknown dtype"))
    }

    @Test func aSlowPageGetsTheNewestPictureNotEveryPicture() throws {
        let hub = LiveHub()
        let (slow, _) = hub.connect()
        let (fast, _) = hub.connect()
        var fastGot = 0
        for i in 0..<10 {
            hub.post(image: "rec", [UInt8(i)])
            fastGot += hub.take(fast).count
        }
        for i in 0..<700 { hub.post(log: "{\"line\": \(i)}") }
        let waiting = hub.take(slow)
        let images = waiting.compactMap { if case .binary(let b) = $0 { b } else { nil } }
        #expect(images == [[9]], "the slow page must get only the newest picture")
        #expect(waiting.count == 1 + 500, "log lines kept for a page are bounded")
        #expect(fastGot == 10)
        let stats = hub.stats()
        #expect(stats["images_posted"] as? Int == 10 && stats["images_replaced_unsent"] as? Int == 9, "\(stats)")
        // A page that connects later gets the latest at once.
        let (late, _) = hub.connect()
        #expect(hub.take(late).contains { if case .binary(let b) = $0 { b == [9] } else { false } })
    }
}
