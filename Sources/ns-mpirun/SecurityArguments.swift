import ArgumentParser
import Pipeline

/// A live session's CURVE keys (the stream stage's keys of the same names).
struct SessionSecurityArguments: ParsableArguments {
    @Option(help: "The session's key pair, a NAME.key_secret file (`ns-mpirun keys generate DIR`). [curve_secret]")
    var curveSecret: String?
    @Option(help: "A folder of the public keys (NAME.key) the control and publish ports let in; with --curve-secret they speak CURVE only. [curve_clients]")
    var curveClients: String?
    @Option(help: "A folder of the public keys that may also abort, set and shut down (default: every key in --curve-clients). [curve_operators]")
    var curveOperators: String?
    @Option(help: "The detector's public key (NAME.key): connect to --connect with CURVE. [detector_key]")
    var detectorKey: String?

    var overrides: [CommandParameters.Override] {
        var o: [CommandParameters.Override] = []
        if let v = curveSecret { o.append(.init("curve_secret", .string(v), option: "--curve-secret")) }
        if let v = curveClients { o.append(.init("curve_clients", .string(v), option: "--curve-clients")) }
        if let v = curveOperators { o.append(.init("curve_operators", .string(v), option: "--curve-operators")) }
        if let v = detectorKey { o.append(.init("detector_key", .string(v), option: "--detector-key")) }
        return o
    }
}
