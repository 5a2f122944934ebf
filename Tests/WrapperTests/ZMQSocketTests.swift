import Foundation
import SwiftZMQ
import Testing

@Suite(.serialized) struct ZMQSocketTests {
    /// 1,000 COSMIC-style messages (JSON header + 512x512 UInt16 frame) over
    /// TCP on loopback: every one arrives, in order, byte for byte.
    @Test func thousandFramesOverTCPArriveExactly() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, .pull)
        try pull.setReceiveHighWaterMark(100)
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        let count = 1000, pixels = 512 * 512
        let base = (0..<pixels).map { UInt16(truncatingIfNeeded: $0 &* 31) }

        // Every frame differs: the base pattern with the index stamped at both ends.
        @Sendable func fill(_ dst: UnsafeMutableRawBufferPointer, index: Int) {
            base.withUnsafeBytes { dst.copyMemory(from: $0) }
            dst.storeBytes(of: UInt64(index), toByteOffset: 0, as: UInt64.self)
            dst.storeBytes(of: UInt64(index) &* 2_654_435_761, toByteOffset: dst.count - 8, as: UInt64.self)
        }

        let sender = TestThread {
            let push = try ZMQSocket(context, .push)
            try push.setSendHighWaterMark(100)
            try push.setLinger(milliseconds: -1)
            try push.connect(endpoint)
            for index in 0..<count {
                let header = "{\"index\":\(index),\"shape_y\":512,\"shape_x\":512,\"dtype\":\"uint16\",\"byteorder\":\"little\"}"
                let payload = try ZMQMessage(count: pixels * 2)
                payload.withUnsafeMutableBytes { fill($0, index: index) }
                try push.send([try ZMQMessage(string: "frame"), try ZMQMessage(string: header), payload])
            }
        }

        let expected = UnsafeMutableRawBufferPointer.allocate(byteCount: pixels * 2, alignment: 8)
        defer { expected.deallocate() }
        var received = 0
        for index in 0..<count {
            let parts = try #require(try pull.receive(timeoutMilliseconds: 10_000), "message \(index) never arrived")
            try #require(parts.count == 3)
            #expect(parts[0].string == "frame")
            let header = try JSONSerialization.jsonObject(with: Data(parts[1].bytes)) as? [String: Any]
            #expect(header?["index"] as? Int == index)
            try #require(parts[2].count == pixels * 2)
            fill(expected, index: index)
            let same = parts[2].withUnsafeBytes { memcmp($0.baseAddress!, expected.baseAddress!, pixels * 2) == 0 }
            #expect(same, "payload of message \(index) differs")
            received += 1
        }
        try sender.join()
        #expect(received == count)
        #expect(try pull.receive(timeoutMilliseconds: 50) == nil)
    }

    @Test func pubSubFiltersByTopic() throws {
        let context = try ZMQContext()
        let pub = try ZMQSocket(context, .pub)
        let endpoint = try pub.bind("tcp://127.0.0.1:*")
        let sub = try ZMQSocket(context, .sub)
        try sub.subscribe("rec")
        try sub.connect(endpoint)
        // A late joiner misses early messages (the slow-joiner rule): publish until one arrives.
        var got: [ZMQMessage]? = nil
        for attempt in 0..<200 where got == nil {
            try pub.send(bytes: [Array("status".utf8), [1]])
            try pub.send(bytes: [Array("rec".utf8), [UInt8(attempt % 256)]])
            got = try sub.receive(timeoutMilliseconds: 20)
        }
        let parts = try #require(got)
        #expect(parts[0].string == "rec")
    }

    @Test func requestReplyAndRouterDealer() throws {
        let context = try ZMQContext()
        let rep = try ZMQSocket(context, .rep)
        let endpoint = try rep.bind("tcp://127.0.0.1:*")
        let server = TestThread {
            guard let request = try rep.receive(timeoutMilliseconds: 5000) else { return }
            try rep.send(bytes: [Array("ok:".utf8) + request[0].bytes])
        }
        let req = try ZMQSocket(context, .req)
        try req.connect(endpoint)
        try req.send(bytes: [Array("status".utf8)])
        let reply = try #require(try req.receive(timeoutMilliseconds: 5000))
        #expect(reply[0].string == "ok:status")
        try server.join()

        let router = try ZMQSocket(context, .router)
        let routerEndpoint = try router.bind("tcp://127.0.0.1:*")
        let dealer = try ZMQSocket(context, .dealer)
        try dealer.connect(routerEndpoint)
        try dealer.send(bytes: [Array("hello".utf8)])
        let incoming = try #require(try router.receive(timeoutMilliseconds: 5000))
        #expect(incoming.count == 2)  // peer identity, then the payload
        #expect(incoming[1].string == "hello")
        try router.send([incoming[0], try ZMQMessage(string: "back")])
        let answer = try #require(try dealer.receive(timeoutMilliseconds: 5000))
        #expect(answer.map(\.string) == ["back"])
    }

    @Test func pollTimesOutWithoutMessages() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, .pull)
        try pull.bind("tcp://127.0.0.1:*")
        let start = Date()
        let ready = try ZMQ.poll([(pull, .readable)], timeoutMilliseconds: 100)
        #expect(!ready[0].contains(.readable))
        #expect(Date().timeIntervalSince(start) >= 0.09)
    }

    /// A part over the receiver's limit never reaches it (the sender is
    /// disconnected and connects again); what comes after it does.
    @Test func oversizeMessagesAreRefusedBeforeTheyAreRead() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, .pull)
        try pull.setMaxMessageSize(1000)
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let push = try ZMQSocket(context, .push)
        try push.connect(endpoint)
        try push.send(bytes: [[UInt8](repeating: 7, count: 5000)])
        #expect(try pull.receive(timeoutMilliseconds: 500) == nil)
        // The pusher reconnects by itself (reconnect interval 100 ms).
        var got: [ZMQMessage]?
        for _ in 0..<50 where got == nil {
            try push.send(bytes: [[1, 2, 3]])
            got = try pull.receive(timeoutMilliseconds: 200)
        }
        #expect(got?.first?.bytes == [1, 2, 3])
    }

    @Test func bindingAUsedPortIsAnError() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context, .pull)
        let endpoint = try first.bind("tcp://127.0.0.1:*")
        let second = try ZMQSocket(context, .pull)
        let error = try #require(throws: ZMQError.self) { try second.bind(endpoint) }
        #expect(error.call == "zmq_bind(\(endpoint))")
        #expect(error.reason.lowercased().contains("address already in use"))
        let bad = try #require(throws: ZMQError.self) { try second.connect("nonsense://x") }
        #expect(bad.call.contains("nonsense://x"))
    }

    @Test func closedSocketsAndEmptyMessagesAreErrors() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context, .push)
        #expect(throws: ZMQError.self) { try push.send([]) }
        push.close()
        let error = try #require(throws: ZMQError.self) { try push.send(bytes: [[1]]) }
        #expect(error.reason == "the socket is closed")
    }

    @Test func noCopyMessageKeepsItsOwnerUntilSent() throws {
        final class Owner {
            let bytes: UnsafeMutableRawBufferPointer
            init(_ count: Int) { bytes = .allocate(byteCount: count, alignment: 16) }
            deinit { bytes.deallocate() }
        }
        weak var watched: Owner?
        let context = try ZMQContext()
        let pull = try ZMQSocket(context, .pull)
        let endpoint = try pull.bind("tcp://127.0.0.1:*")
        let push = try ZMQSocket(context, .push)
        try push.connect(endpoint)
        do {
            let owner = Owner(4096)
            watched = owner
            for i in 0..<4096 { owner.bytes[i] = UInt8(i % 251) }
            try push.send([try ZMQMessage(noCopy: UnsafeRawBufferPointer(owner.bytes), owner: owner)])
        }
        let parts = try #require(try pull.receive(timeoutMilliseconds: 5000))
        #expect(parts[0].bytes == (0..<4096).map { UInt8($0 % 251) })
        // ZeroMQ released the owner once the bytes left (its I/O thread may lag a moment).
        for _ in 0..<100 where watched != nil { usleep(10_000) }
        #expect(watched == nil)
    }
}
