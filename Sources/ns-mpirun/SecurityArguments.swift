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

/// Where a live session serves Prometheus's /metrics (the stream stage's keys of the same names).
struct SessionMetricsArguments: ParsableArguments {
    @Option(help: "Serve Prometheus's /metrics from rank 0 on HOST:PORT (port 0: any free port); beyond loopback, with the three options below. [metrics]")
    var metrics: String?
    @Option(help: "A file (mode 0600) holding the token a scrape sends as Authorization: Bearer. [metrics_token]")
    var metricsTokenFile: String?
    @Option(help: "PEM certificate chain: serve /metrics over HTTPS. [metrics_tls_cert]")
    var metricsTlsCert: String?
    @Option(help: "PEM private key of --metrics-tls-cert. [metrics_tls_key]")
    var metricsTlsKey: String?

    var overrides: [CommandParameters.Override] {
        var o: [CommandParameters.Override] = []
        if let v = metrics { o.append(.init("metrics", .string(v), option: "--metrics")) }
        if let v = metricsTokenFile { o.append(.init("metrics_token", .string(v), option: "--metrics-token-file")) }
        if let v = metricsTlsCert { o.append(.init("metrics_tls_cert", .string(v), option: "--metrics-tls-cert")) }
        if let v = metricsTlsKey { o.append(.init("metrics_tls_key", .string(v), option: "--metrics-tls-key")) }
        return o
    }
}
