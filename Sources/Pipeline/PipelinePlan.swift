/// A pipeline resolved for a job size: which ranks run each stage and
/// which output feeds each input. Made before anything is allocated.
public struct PipelinePlan: Sendable {
    public struct Step: Sendable {
        public var stage: StageInstance
        public var ranks: [Int]
        /// Input port -> producing stage, its port and its ranks.
        public var feeds: [(input: String, stage: String, port: String, ranks: [Int])]
    }

    public var spec: PipelineSpec
    public var ranks: Int
    public var steps: [Step]

    /// Counted groups (a count or a fraction) take disjoint blocks of ranks in
    /// file order from rank 0; "rest" stages share what is left; "all"
    /// stages run everywhere; "with:S" stages run on S's ranks.
    public init(_ spec: PipelineSpec, ranks: Int) throws {
        precondition(ranks > 0)
        var issues: [ValidationIssue] = []
        var groups: [String: [Int]] = [:]
        var next = 0
        for s in spec.stages {
            let n: Int
            switch s.ranks {
            case .count(let c): n = c
            case .fraction(let f): n = max(1, Int((f * Double(ranks)).rounded(.down)))
            default: continue
            }
            if next + n > ranks {
                issues.append(.init(keyPath: "stages.\(s.name).ranks",
                                    problem: "asks for \(n) ranks from rank \(next), but the job has \(ranks) (the counted stages before it took \(next))"))
                groups[s.name] = []
            } else {
                groups[s.name] = Array(next..<(next + n))
            }
            next += n
        }
        let rest = next < ranks ? Array(next..<ranks) : []
        for s in spec.stages {
            switch s.ranks {
            case .all: groups[s.name] = Array(0..<ranks)
            case .rest:
                if rest.isEmpty {
                    issues.append(.init(keyPath: "stages.\(s.name).ranks",
                                        problem: "\"rest\" is empty: the counted stages take all \(ranks) ranks"))
                }
                groups[s.name] = rest
            default: break
            }
        }
        // "with" may chain; resolve until nothing changes.
        var changed = true
        while changed {
            changed = false
            for s in spec.stages {
                guard case .with(let other) = s.ranks, groups[s.name] == nil, let g = groups[other] else { continue }
                groups[s.name] = g
                changed = true
            }
        }
        for s in spec.stages where groups[s.name] == nil {
            issues.append(.init(keyPath: "stages.\(s.name).ranks", problem: "\(s.ranks) forms a cycle"))
        }
        if !issues.isEmpty { throw PipelineValidationError(file: spec.file, issues: issues) }
        self.spec = spec
        self.ranks = ranks
        steps = spec.stages.map { s in
            Step(stage: s, ranks: groups[s.name]!,
                 feeds: s.inputs.sorted { $0.key < $1.key }.map { ($0.key, $0.value.stage, $0.value.port, groups[$0.value.stage]!) })
        }
    }

    /// The plan as a person reads it.
    public var text: String {
        var out = "pipeline '\(spec.name)' from \(spec.file) on \(ranks) rank\(ranks == 1 ? "" : "s")\n"
        if !spec.summary.isEmpty { out += "  \(spec.summary)\n" }
        let nameWidth = max(5, steps.map(\.stage.name.count).max() ?? 0)
        let typeWidth = max(4, steps.map(\.stage.type.count).max() ?? 0)
        out += "  " + "stage".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
            + "type".padding(toLength: typeWidth, withPad: " ", startingAt: 0) + "  ranks\n"
        for step in steps {
            out += "  " + step.stage.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  "
                + step.stage.type.padding(toLength: typeWidth, withPad: " ", startingAt: 0) + "  \(PipelinePlan.ranges(step.ranks))\n"
            for f in step.feeds {
                out += "      \(f.input) <- \(f.stage).\(f.port) (ranks \(PipelinePlan.ranges(f.ranks)))\n"
            }
            let params = step.stage.parameters.values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            if !params.isEmpty { out += "      " + params.joined(separator: " ") + "\n" }
        }
        for (name, endpoint) in spec.endpoints.sorted(by: { $0.key < $1.key }) { out += "  endpoint \(name): \(endpoint)\n" }
        out += "  output: \(spec.outputDirectory) (saving \(spec.save.map(\.rawValue).joined(separator: ", ")))\n"
        return out
    }

    /// 0-3,5,7-8
    static func ranges(_ ranks: [Int]) -> String {
        var parts: [String] = [], i = 0
        while i < ranks.count {
            var j = i
            while j + 1 < ranks.count && ranks[j + 1] == ranks[j] + 1 { j += 1 }
            parts.append(i == j ? "\(ranks[i])" : "\(ranks[i])-\(ranks[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }
}
