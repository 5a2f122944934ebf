import Foundation
import Pipeline
import ReconMPI
import SwiftMPI

/// Runs a planned pipeline once (one scan) on the job's ranks: each rank
/// makes the stages whose group holds it, sources produce, and every item
/// goes to the consumers of its output port, on the consumer group's rank
/// `index mod size` (scan-wide items, index < 0, to every rank of it).
/// A stage flushes once every rank of every producer feeding it has said
/// it is done, then says so itself: the end of the scan flows down the graph.
/// A stage may close one output earlier (`StageItem.end(of:)`); its
/// consumers hear of each input's end (`inputEnded`) in declared order.
/// Local stages take their steps in one order on every rank (producers
/// first; a stage waits for the ones before it), so collectives in
/// `inputEnded` and `flush` meet. A rank that runs only a source stops
/// producing while more than `maxPendingBytes` of its sends are unreceived,
/// so a fast reader never holds a whole scan in flight.
public final class PipelineRunner {
    /// Items each local stage received and emitted, by stage name.
    public struct Counts: Sendable, Equatable {
        public var received = 0
        public var emitted = 0
    }

    let plan: PipelinePlan
    let world: Communicator
    /// For each stage (plan order): its instance on this rank, if any.
    var instances: [(any Stage)?] = []
    var groups: [Communicator?] = []
    /// (consumer stage, input port) for each (producer stage, output port).
    var consumers: [String: [(stage: Int, port: String)]] = [:]
    /// End markers still awaited per local stage, and per input port.
    var endsAwaited: [Int] = []
    var portEndsAwaited: [[String: Int]] = []
    /// Inputs whose end the stage has been told of, and outputs closed early.
    var told: [Set<String>] = []
    var closed: [Set<String>] = []
    var finished: [Bool] = []
    /// Whether this rank runs a source and nothing else (it may wait on its sends).
    var sourceOnly = false
    let maxPendingBytes: Int
    var pendingBytes = 0
    /// Producers before consumers, the same on every rank: stages flush in
    /// this order, so group collectives in `flush` never wait on each other.
    let order: [Int]
    /// Sends in flight, with the buffers they read from.
    var pending: [(request: Request, buffer: UnsafeMutableBufferPointer<UInt8>)] = []
    public private(set) var counts: [String: Counts] = [:]

    static let tag = 7301
    enum Kind: Int { case item = 0, end = 1 }
    enum PayloadType: Int { case floats = 0, doubles = 1, text = 2 }

    public init(plan: PipelinePlan, registry: StageRegistry, world: Communicator, outputDirectory: String,
                maxPendingBytes: Int = 64 << 20) throws {
        precondition(plan.ranks == world.size, "the plan is for \(plan.ranks) ranks, the job has \(world.size)")
        self.plan = plan
        self.world = world
        self.maxPendingBytes = maxPendingBytes
        order = topologicalOrder(plan.steps.map(\.stage))
        for (i, step) in plan.steps.enumerated() {
            for feed in step.feeds {
                let producer = plan.steps.firstIndex { $0.stage.name == feed.stage }!
                consumers["\(producer).\(feed.port)", default: []].append((i, feed.input))
            }
        }
        for (i, step) in plan.steps.enumerated() {
            // Collective over the job: every rank takes part in every split.
            let mine = step.ranks.contains(world.rank)
            let group = try world.split(color: mine ? i : nil, key: world.rank)
            groups.append(group)
            if let group {
                let type = registry.type(named: step.stage.type)!
                let context = StageContext(name: step.stage.name, groupRank: group.rank, groupSize: group.size, group: group,
                                           outputDirectory: outputDirectory, endpoints: plan.spec.endpoints, save: plan.spec.save)
                instances.append(try type.init(parameters: step.stage.parameters, context: context))
            } else {
                instances.append(nil)
            }
            endsAwaited.append(mine ? step.feeds.reduce(0) { $0 + $1.ranks.count } : 0)
            var ports: [String: Int] = [:]
            for input in step.stage.inputNames { ports[input] = 0 }
            if mine { for feed in step.feeds { ports[feed.input, default: 0] += feed.ranks.count } }
            portEndsAwaited.append(ports)
            told.append([])
            closed.append([])
            finished.append(!mine)
            counts[step.stage.name] = Counts()
        }
        let local = instances.compactMap { $0 }
        sourceOnly = local.count == 1 && local[0] is any SourceStage
    }

    /// One scan through the pipeline; returns when every local stage has flushed.
    public func run() throws {
        try advance()
        while finished.contains(false) {
            let (bytes, status) = try world.receive(UInt8.self, from: nil, tag: Self.tag)
            try deliver(bytes, from: status.source)
            try completeSends(waiting: false)
            try advance()
        }
        try completeSends(waiting: true)
        try world.barrier()
    }

    func completeSends(waiting: Bool) throws {
        var kept: [(request: Request, buffer: UnsafeMutableBufferPointer<UInt8>)] = []
        for p in pending {
            if waiting { try p.request.wait() } else if try !p.request.test() { kept.append(p); continue }
            pendingBytes -= p.buffer.count
            p.buffer.deallocate()
        }
        pending = kept
    }

    /// Aborted scan: every local stage forgets it.
    public func reset() { for s in instances { s?.reset() } }

    /// Tells stages of their ended inputs, runs sources and flushes stages,
    /// in order, as far as their inputs have ended.
    func advance() throws {
        for i in order where !finished[i] {
            if let instance = instances[i] {
                // Declared order: an input is told of only after those before it.
                for port in type(of: instance).description.inputs.map(\.name) where !told[i].contains(port) {
                    guard portEndsAwaited[i][port] == 0 else { break }
                    told[i].insert(port)
                    try instance.inputEnded(port) { try self.route($0, from: i) }
                }
            }
            guard endsAwaited[i] == 0 else { return }
            if let source = instances[i] as? any SourceStage { try source.produce { try self.route($0, from: i) } }
            try finish(i)
        }
    }

    func finish(_ stage: Int) throws {
        guard let instance = instances[stage] else { return }
        try instance.flush { try self.route($0, from: stage) }
        finished[stage] = true
        for (_, port) in plan.steps[stage].stage.outputs(in: plan) where !closed[stage].contains(port) { try close(port, of: stage) }
    }

    /// End markers for one output, to every rank of every stage it feeds.
    func close(_ port: String, of stage: Int) throws {
        closed[stage].insert(port)
        for consumer in consumers["\(stage).\(port)"] ?? [] {
            for rank in plan.steps[consumer.stage].ranks {
                try send(kind: .end, consumer: consumer.stage, port: consumer.port, index: -1, payload: nil, producer: stage, to: rank)
            }
        }
    }

    func route(_ item: StageItem, from stage: Int) throws {
        let name = plan.steps[stage].stage.name
        guard let instance = instances[stage], type(of: instance).description.outputs.contains(where: { $0.name == item.port }) else {
            throw StageError(stage: name, problem: "emitted an item on '\(item.port)', which is not one of its declared outputs")
        }
        if item.index == StageItem.endIndex {
            guard !closed[stage].contains(item.port) else {
                throw StageError(stage: name, problem: "closed its output '\(item.port)' twice")
            }
            return try close(item.port, of: stage)
        }
        if closed[stage].contains(item.port) {
            throw StageError(stage: name, problem: "emitted an item on '\(item.port)' after closing it")
        }
        counts[name]!.emitted += 1
        for consumer in consumers["\(stage).\(item.port)"] ?? [] {
            let ranks = plan.steps[consumer.stage].ranks
            let targets = item.index >= 0 ? [ranks[item.index % ranks.count]] : ranks
            for rank in targets {
                var copy = item
                copy.port = consumer.port
                if rank == world.rank {
                    try accept(copy, stage: consumer.stage)
                } else {
                    try send(kind: .item, consumer: consumer.stage, port: consumer.port, index: item.index, payload: item.payload,
                             producer: stage, to: rank)
                }
            }
        }
    }

    func accept(_ item: StageItem, stage: Int) throws {
        counts[plan.steps[stage].stage.name]!.received += 1
        try instances[stage]!.process(item) { try self.route($0, from: stage) }
    }

    func ended(stage: Int, port: String) {
        endsAwaited[stage] -= 1
        portEndsAwaited[stage][port, default: 0] -= 1
    }

    // Message: kind, consumer stage, input port (as the index among the
    // consumer's inputs), item index, payload type, then the payload bytes.
    func send(kind: Kind, consumer: Int, port: String, index: Int, payload: Any?, producer: Int, to rank: Int) throws {
        if rank == world.rank, kind == .end { ended(stage: consumer, port: port); return }
        let inputs = plan.steps[consumer].stage.inputNames
        var header = [kind.rawValue, consumer, inputs.firstIndex(of: port)!, index, 0]
        var body: [UInt8] = []
        switch payload {
        case nil: break
        case let v as [Float]:
            header[4] = PayloadType.floats.rawValue
            body = v.withUnsafeBytes { Array($0) }
        case let v as [Double]:
            header[4] = PayloadType.doubles.rawValue
            body = v.withUnsafeBytes { Array($0) }
        case let v as String:
            header[4] = PayloadType.text.rawValue
            body = Array(v.utf8)
        case let other?:
            throw StageError(stage: plan.steps[producer].stage.name,
                             problem: "cannot send a \(type(of: other)) to rank \(rank): only [Float], [Double] and String travel between ranks")
        }
        let message = header.withUnsafeBytes { Array($0) } + body
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: message.count)
        _ = buffer.initialize(from: message)
        do {
            pending.append((try world.isend(UnsafeBufferPointer(buffer), to: rank, tag: Self.tag), buffer))
            pendingBytes += buffer.count
        } catch {
            buffer.deallocate()
            throw error
        }
        // Backpressure, only where nothing else on this rank waits for its turn.
        while sourceOnly && pendingBytes > maxPendingBytes, let oldest = pending.first {
            try oldest.request.wait()
            pendingBytes -= oldest.buffer.count
            oldest.buffer.deallocate()
            pending.removeFirst()
        }
    }

    func deliver(_ bytes: [UInt8], from source: Int) throws {
        let headerBytes = 5 * MemoryLayout<Int>.stride
        guard bytes.count >= headerBytes else { throw StageError(stage: "(runner)", problem: "a \(bytes.count)-byte message from rank \(source)") }
        let header = bytes.withUnsafeBytes { raw in (0..<5).map { raw.load(fromByteOffset: $0 * MemoryLayout<Int>.stride, as: Int.self) } }
        let stage = header[1]
        let body = bytes[headerBytes...]
        if header[0] == Kind.end.rawValue { ended(stage: stage, port: plan.steps[stage].stage.inputNames[header[2]]); return }
        let payload: Any
        switch PayloadType(rawValue: header[4]) {
        case .floats: payload = body.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        case .doubles: payload = body.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        case .text: payload = String(decoding: body, as: UTF8.self)
        case nil: throw StageError(stage: "(runner)", problem: "payload type \(header[4]) from rank \(source)")
        }
        let port = plan.steps[stage].stage.inputNames[header[2]]
        try accept(StageItem(port: port, index: header[3], payload: payload), stage: stage)
    }
}

extension StageInstance {
    /// Inputs in a fixed order: a message names its input by position here.
    var inputNames: [String] { inputs.keys.sorted() }

    /// (this stage's index, output port) for every output some stage reads.
    func outputs(in plan: PipelinePlan) -> [(Int, String)] {
        let index = plan.steps.firstIndex { $0.stage.name == name }!
        var ports: Set<String> = []
        for step in plan.steps { for f in step.feeds where f.stage == name { ports.insert(f.port) } }
        return ports.sorted().map { (index, $0) }
    }
}
