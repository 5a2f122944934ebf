import Foundation
import SwiftZMQ

/// What a rank's main loop is doing and since when: set by the main loop,
/// read by the rank's heartbeat thread.
final class RankActivity: @unchecked Sendable {
    /// Activities in which a rank waits for the others, at a round's edges.
    static let waiting: Set<String> = ["waiting for the round's plan", "exchanging counts"]

    private let lock = NSLock()
    private var round = 0
    private var activity = "starting"
    private var since = Date()
    /// Warnings and errors not yet sent with a heartbeat (rank 0 publishes them).
    private var notes: [String] = []
    private var notesCut = 0

    /// Keeps a warning or error for the next heartbeat; beyond 32 waiting, lines are counted, not kept.
    func note(_ line: String) {
        lock.lock()
        if notes.count < 32 { notes.append(String(line.prefix(1024))) } else { notesCut += 1 }
        lock.unlock()
    }

    func set(_ activity: String) {
        lock.lock()
        if activity != self.activity {
            self.activity = activity
            since = Date()
        }
        lock.unlock()
    }

    func nextRound() {
        lock.lock()
        round += 1
        lock.unlock()
    }

    func beat(rank: Int) -> Heartbeat {
        lock.lock()
        defer { lock.unlock() }
        var lines = notes
        if notesCut > 0 { lines.append("\(notesCut) more warning(s) not sent; see this rank's log file") }
        notes.removeAll()
        notesCut = 0
        return Heartbeat(rank: rank, round: round, activity: activity, activitySeconds: Date().timeIntervalSince(since),
                         lines: lines.isEmpty ? nil : lines)
    }
}

/// One rank's heartbeat. It is sent by a thread apart from the main loop,
/// so a rank busy in a long computation or blocked in a collective still
/// says where it is, and a rank that stopped (a hang, a lost node) falls silent.
struct Heartbeat: Codable {
    var rank: Int
    var round: Int
    var activity: String
    var activitySeconds: Double
    /// Warnings and errors logged since the last beat.
    var lines: [String]?
}

/// Sends this rank's heartbeat to rank 0 every `period` seconds, over
/// ZeroMQ with CURVE (keys made for the session and handed out over MPI).
final class HeartbeatSender: @unchecked Sendable {
    private let socket: ZMQSocket
    private let rank: Int
    private let activity: RankActivity
    private let period: Double
    private let stopLock = NSLock()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)

    init(context: ZMQContext, endpoint: String, serverKey: String, rank: Int, activity: RankActivity, period: Double) throws {
        socket = try ZMQSocket(context, .push)
        let keys = try ZMQ.curveKeyPair()
        try socket.setCurveClient(serverKey: serverKey, publicKey: keys.publicKey, secretKey: keys.secretKey)
        // A beat that cannot go out at once is dropped: the next one says the same, newer.
        try socket.setSendHighWaterMark(4)
        try socket.setSendTimeout(milliseconds: 0)
        try socket.connect(endpoint)
        self.rank = rank
        self.activity = activity
        self.period = period
        let t = Thread { [self] in
            while !shouldStop {
                if let json = try? JSONEncoder().encode(activity.beat(rank: rank)) { try? socket.send(bytes: [Array(json)]) }
                Thread.sleep(forTimeInterval: period)
            }
            finished.signal()
        }
        t.name = "ns-heartbeat"
        t.start()
    }

    private var shouldStop: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopping
    }

    func stop() {
        stopLock.lock()
        let first = !stopping
        stopping = true
        stopLock.unlock()
        guard first else { return }
        finished.wait()
        socket.close()
    }

    deinit { stop() }
}

/// Rank 0's view of every rank's heartbeats, and which ranks are late.
struct HeartbeatBoard {
    private(set) var latest: [Int: (beat: Heartbeat, at: Date)] = [:]

    /// The beat's rank and the log lines it carried.
    @discardableResult
    mutating func record(_ bytes: [UInt8]) -> (rank: Int, lines: [String])? {
        guard let beat = try? JSONDecoder().decode(Heartbeat.self, from: Data(bytes)) else { return nil }
        latest[beat.rank] = (beat, Date())
        return (beat.rank, beat.lines ?? [])
    }

    /// Per rank: its heartbeat's age, what it does and for how long, and
    /// whether it is late. When no round completes for `timeout` (`stalled`),
    /// the late ranks are those silent for `timeout`, else those behind the
    /// others' round, else those working while the others wait for them.
    func ranks(_ count: Int, timeout: Double, stalled: Bool) -> [[String: Any]] {
        let now = Date()
        let maxRound = latest.values.map(\.beat.round).max() ?? 0
        let someoneWaits = latest.values.contains { RankActivity.waiting.contains($0.beat.activity) }
        var out: [[String: Any]] = []
        var late = Set<Int>()
        for r in 0..<count {
            guard let (beat, at) = latest[r] else {
                out.append(["rank": r, "heartbeat_age_s": -1, "activity": "no heartbeat yet"])
                continue
            }
            let age = now.timeIntervalSince(at)
            out.append(["rank": r, "heartbeat_age_s": age, "activity": beat.activity, "activity_s": beat.activitySeconds + age,
                        "round": beat.round])
            if age > timeout { late.insert(r) }
        }
        if stalled && late.isEmpty {
            late = Set(latest.filter { $0.value.beat.round < maxRound }.map(\.key))
            if late.isEmpty && someoneWaits {
                late = Set(latest.filter { !RankActivity.waiting.contains($0.value.beat.activity) }.map(\.key))
            }
        }
        return out.map { r in
            var r = r
            r["late"] = late.contains(r["rank"] as? Int ?? -1) || (latest[r["rank"] as? Int ?? -1] == nil && stalled)
            return r
        }
    }
}
