// swift-tools-version:6.0
import PackageDescription
import Foundation

// The MPI flavour is chosen at build time, without editing sources:
// NS_MPI_PKG / NS_HDF5_PKG name the pkg-config packages (defaults: Debian's
// OpenMPI builds). For MPICH: NS_MPI_PKG=mpich NS_HDF5_PKG=hdf5-mpich.
// NS_FFTW_PKG and NS_ZMQ_PKG do the same for a cluster's own builds.
let env = ProcessInfo.processInfo.environment
let mpiPkg = env["NS_MPI_PKG"] ?? "ompi-c"
let hdf5Pkg = env["NS_HDF5_PKG"] ?? "hdf5-openmpi"
let fftwPkg = env["NS_FFTW_PKG"] ?? "fftw3f"
// Debian's libzmq.pc adds `-isystem` for Kerberos headers zmq.h does not
// need, which SwiftPM refuses with a warning on every build; zmq.h sits in
// /usr/include and the module map links libzmq, so pkg-config is asked only
// for a build named in NS_ZMQ_PKG.
let zmqPkg = env["NS_ZMQ_PKG"]
let mpiSettings: [SwiftSetting] = mpiPkg.lowercased().contains("mpich") ? [.define("NS_MPICH")] : []
// The hot loops (solver, preprocessing) are written in explicit vector lanes;
// a release build compiles them for the building machine's vector units
// (AVX2 and FMA where present; FFTW picks its own at run time). For a binary
// that must run on other CPUs, name one: NS_TARGET_CPU=x86-64 (portable),
// NS_TARGET_CPU=haswell, ...; NS_TARGET_CPU=none passes no flag.
let targetCPU = env["NS_TARGET_CPU"] ?? "native"
let vectorSettings: [SwiftSetting] = targetCPU == "none" ? []
    : [.unsafeFlags(["-target-cpu", targetCPU], .when(configuration: .release))]

let package = Package(
    name: "nanosurveyor",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ns-mpirun", targets: ["ns-mpirun"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // C modules: a module map and a shim header each, nothing else.
        .systemLibrary(name: "CMPI", pkgConfig: mpiPkg,
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CFFTW", pkgConfig: fftwPkg,
                       providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: hdf5Pkg,
                       providers: [.apt(["libhdf5-openmpi-dev"])]),
        .systemLibrary(name: "CZMQ", pkgConfig: zmqPkg,
                       providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTIFF", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CCache"),
        .systemLibrary(name: "CFuzzer"),

        // Thin Swift wrappers: resource ownership and error mapping only.
        .target(name: "SwiftMPI", dependencies: [
            "CMPI", .product(name: "Numerics", package: "swift-numerics"),
        ], swiftSettings: mpiSettings),
        .target(name: "SwiftFFTW", dependencies: [
            "CFFTW", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "SwiftHDF5", dependencies: [
            "CHDF5", "CMPI", "SwiftMPI", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .target(name: "SwiftZMQ", dependencies: ["CZMQ"]),
        .target(name: "SwiftPNG", dependencies: ["CPNG"]),
        .target(name: "SwiftTIFF", dependencies: ["CTIFF"]),
        // CURVE keys and who they let in: certificate files, the ZAP handler, the loopback rule.
        .target(name: "RemoteAccess", dependencies: ["SwiftZMQ"]),
        // HTTP beyond loopback: a token, cross-site requests refused, HTTPS from PEM files.
        .target(name: "WebAccess", dependencies: [
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // A session's counters in Prometheus's form, and the HTTP endpoint that serves them.
        .target(name: "SessionMetrics", dependencies: [
            "WebAccess",
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Product files written beside their target and renamed into place when complete; outputs that are inputs refused.
        .target(name: "SafeOutput"),

        // Declared parameters: type, unit, default, range and doc, checked alike wherever a value comes from.
        .target(name: "Parameters"),

        // Domain modules.
        // The solver's core: complex arrays, FFTs, geometry, scans, tiles, first probes, and the communicator interface.
        .target(name: "Recon", dependencies: [
            "SwiftFFTW", .product(name: "Numerics", package: "swift-numerics"),
        ], swiftSettings: vectorSettings),
        // The reconstruction engines over one model (DM, RAAR, ML, rPIE), registered by name.
        .target(name: "Engines", dependencies: [
            "Recon", "Parameters", "SwiftFFTW", "CCache", .product(name: "Numerics", package: "swift-numerics"),
        ], swiftSettings: vectorSettings),
        // Raw frames to clean diffraction: darks, offsets, interference, photons, crop, downsampling.
        .target(name: "Ingest", dependencies: ["Recon", "SwiftFFTW", .product(name: "Numerics", package: "swift-numerics")],
                swiftSettings: vectorSettings),
        // Simulated scans: test samples, probes, scan patterns, photon noise, and a fast-CCD detector with its truth.
        .target(name: "Simulator", dependencies: ["Recon", "Ingest", .product(name: "Numerics", package: "swift-numerics")],
                swiftSettings: vectorSettings),
        // Recon's communicator interface carried by MPI.
        .target(name: "ReconMPI", dependencies: [
            "Recon", "SwiftMPI", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        // CXI (HDF5) files: the standard layout, serial or written in parallel.
        .target(name: "CXI", dependencies: [
            "Recon", "Engines", "Ingest", "Simulator", "SafeOutput", "SwiftHDF5", "SwiftMPI", "SwiftPNG", "SwiftTIFF", .product(name: "Numerics", package: "swift-numerics"),
        ]),

        // Raw scans to clean CXI scans on a group of ranks (the offline path).
        .target(name: "Preprocessing", dependencies: [
            "Ingest", "CXI", "Recon", "ReconMPI", "SafeOutput", "SwiftMPI", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        // Pictures of a reconstruction as it runs: object, probe, error curves.
        .target(name: "Preview", dependencies: [
            "Recon", "SafeOutput", "SwiftPNG", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        // A reconstruction from a CXI file to a CXI file on a group of ranks.
        .target(name: "Reconstruction", dependencies: [
            "Recon", "Engines", "ReconMPI", "CXI", "Preview", "SwiftHDF5", "SwiftMPI", "SwiftPNG", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        // Pipeline files: stages with declared inputs, outputs and parameters on groups of ranks.
        .target(name: "Pipeline", dependencies: ["Parameters", "Recon", "SafeOutput"]),
        // Pipelines run on MPI rank groups, and the stages that read files.
        .target(name: "PipelineRuntime", dependencies: ["Parameters", "Pipeline", "CXI", "Recon", "Engines", "ReconMPI", "SwiftMPI", "Ingest", "Preprocessing", "Reconstruction", "Streaming", "RunLogs", "SafeOutput", .product(name: "Logging", package: "swift-log")],
                resources: [.copy("Pipelines")]),
        // A virtual fast CCD: scans sent over ZeroMQ with injected faults.
        .target(name: "VirtualDetector", dependencies: ["CXI", "Ingest", "Recon", "SwiftZMQ", "RemoteAccess"]),
        // Per-rank log files (swift-log) and their merged timeline.
        .target(name: "RunLogs", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // The live session: ZeroMQ ingest on rank 0, frames dealt over MPI, the solver running while they arrive.
        .target(name: "Streaming", dependencies: [
            "Parameters", "Ingest", "Pipeline", "Recon", "Engines", "ReconMPI", "Reconstruction", "CXI", "SafeOutput", "SwiftMPI", "SwiftZMQ", "SwiftHDF5", "RemoteAccess", "SessionMetrics", "WebAccess",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
        // The web front-end: a separate process that subscribes to a session and serves the page and its WebSocket.
        .target(name: "Viewer", dependencies: [
            "SwiftZMQ", "SwiftHDF5", "CXI", "Recon", "RemoteAccess", "WebAccess", "SessionMetrics", .product(name: "Numerics", package: "swift-numerics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ], resources: [.copy("Assets")]),
        // Benchmarks behind `ns-mpirun bench`, each against a baseline measured in the same run.
        .target(name: "Benchmarks", dependencies: ["SafeOutput", "Recon", "Engines", "ReconMPI", "CXI", "Ingest", "Simulator", "SwiftMPI", "SwiftFFTW", "SwiftHDF5", "SwiftZMQ", "Streaming", "VirtualDetector"]),
        // Whole-stack checks a user runs on a new machine or cluster.
        .target(name: "Diagnostics", dependencies: [
            "SwiftMPI", "SwiftFFTW", "SwiftHDF5", "SwiftZMQ",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),

        .executableTarget(name: "ns-mpirun", dependencies: [
            "SwiftMPI", "SwiftFFTW", "SwiftHDF5", "SwiftZMQ", "Diagnostics", "Benchmarks", "Recon", "Engines", "ReconMPI", "Reconstruction", "Preprocessing", "Ingest", "Simulator", "CXI", "Preview", "Parameters", "Pipeline", "PipelineRuntime", "VirtualDetector", "Streaming", "RunLogs", "SafeOutput", "Viewer", "RemoteAccess", "WebAccess", "SessionMetrics",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // libFuzzer targets for what crosses the boundary; scripts/fuzz.sh builds and runs them.
        .executableTarget(name: "ns-fuzz", dependencies: ["CFuzzer", "Ingest", "Parameters", "Pipeline", "PipelineRuntime", "Streaming"]),

        .testTarget(name: "WrapperTests", dependencies: [
            "SwiftMPI", "SwiftFFTW", "SwiftHDF5", "SwiftZMQ", "SwiftPNG",
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "CXI", "Recon", "Engines", "Ingest", "Simulator", "SwiftZMQ",
            "SwiftHDF5", .product(name: "Numerics", package: "swift-numerics"),
        ]),
        .testTarget(name: "DomainTests", dependencies: [
            "Recon", "Engines", "Ingest", "Simulator", "Parameters", "Pipeline", "PipelineRuntime", "Preprocessing", "Reconstruction", "Streaming", "CXI", "Preview", "SafeOutput", "SwiftHDF5", "SwiftPNG",
            "RunLogs", "Viewer", "RemoteAccess", "WebAccess", "SessionMetrics", "SwiftZMQ", .product(name: "Logging", package: "swift-log"),
            .product(name: "Numerics", package: "swift-numerics"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
