import ArgumentParser
import CXI
import Foundation
import Recon
import Simulator

struct GeometryOptions: ParsableArguments {
    @Option(help: "Photon energy in eV.")
    var energyEv = 800.0
    @Option(help: "Sample-detector distance in m.")
    var distance = 0.121
    @Option(help: "Detector pixel pitch in m.")
    var detectorPixel = 60e-6
    @Option(help: "Frame size in pixels (square).")
    var frameSize = 128

    var geometry: Geometry {
        Geometry(energy: energyEv * PhysicalConstants.electronVolt, distance: distance,
                 detectorPixelSize: detectorPixel, frameSize: frameSize)
    }
}

struct ZonePlateOptions: ParsableArguments {
    @Option(help: "Zone plate diameter in m.")
    var zpDiameter = 240e-6
    @Option(help: "Outermost zone width in m.")
    var zpOuterZone = 40e-9
    @Option(help: "Central stop diameter in m.")
    var zpCentralStop = 100e-6
    @Option(help: "Order-sorting aperture diameter in m (default: none).")
    var osaDiameter: Double?
    @Option(help: "Order-sorting aperture distance upstream of the focus in m.")
    var osaDistance = 1e-3
    @Option(help: "Sample distance downstream of the focus in m.")
    var defocus = 20e-6

    var zonePlate: ZonePlate {
        ZonePlate(diameter: zpDiameter, outerZoneWidth: zpOuterZone, centralStop: zpCentralStop,
                  osaDiameter: osaDiameter, osaDistance: osaDistance, defocus: defocus)
    }
}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate a ptychography scan (zone-plate probe, test sample, noise, optional raw fast-CCD frames) into a CXI file.",
        discussion: """
            Frames are split across the ranks and written collectively, a few at a time, so any \
            scan size fits in memory. The result depends on --seed, never on the rank count.
            """)

    @Option(name: .shortAndLong, help: "The CXI file to write (replaced if it exists).")
    var output = "scan.cxi"
    @OptionGroup(title: "Geometry") var geometry: GeometryOptions
    @OptionGroup(title: "Zone plate") var optics: ZonePlateOptions

    @Option(help: "Scan: RxC or raster:RxC, spiral:N, rounds:N.")
    var scan = "20x20"
    @Option(help: "Scan step in m.")
    var step = 300e-9
    @Option(help: "Random position jitter as a fraction of the step.")
    var jitter = 0.1

    @Option(help: "Feature thickness of the test sample in m.")
    var thickness = 100e-9
    @Option(help: "Refractive index decrement of the sample material.")
    var delta = 1e-3
    @Option(help: "Absorption index of the sample material.")
    var beta = 2.5e-4
    @Option(help: "Random particles on the test sample.")
    var particles = 40
    @Option(help: "Use an image as the thickness map, scaled to --thickness (black 0, white the full thickness; an SEM image works): PNG, TIFF (8-, 16- or 32-bit grey or RGB; the first image), or HDF5 (FILE:/dataset, or FILE holding one dataset).")
    var sampleImage: String?

    @Option(help: "Photons per frame through an empty sample.")
    var photons = 1e6
    @Flag(help: "No Poisson noise (expected intensities).")
    var noPoisson = false
    @Option(help: "Beamstop radius in detector pixels (default: none).")
    var beamstopRadius: Double?
    @Option(help: "Beamstop intensity transmission.")
    var beamstopTransmission = 0.0
    @Option(help: "Mean background in photons per pixel.")
    var background = 0.0

    @Flag(help: "Write raw fast-CCD frames (UInt16 with offsets, drift, dark current, noise, bad pixels, readout spikes).")
    var raw = false
    @Option(help: "Dark frames to record (raw mode).")
    var darkFrames = 0
    @Option(help: "Readout channels (raw mode).")
    var channels = 16
    @Option(help: "Overscan columns per channel (raw mode).")
    var overscan = 4
    @Option(help: "ADC gain in ADU per photon (raw mode).")
    var gain = 8.0

    @Option(help: "Partially coherent illumination: this many mutually incoherent modes (frames are their incoherent sum); with --mode-powers.")
    var probeModes = 1
    @Option(help: "Relative powers of the modes, strongest first, e.g. 70,20,10 (default with --probe-modes K: 1/2 of the rest to each next mode).")
    var modePowers: String?
    @Option(help: "Random error of the positions the file records, rms length in object pixels (the truth keeps the true ones).")
    var positionError = 0.0
    @Option(help: "Slow drift of the recorded positions, in object pixels at the scan's end (one direction, linear in scan order).")
    var positionDrift = 0.0

    @Option(help: "Seed for the sample, scan jitter, noise and detector.")
    var seed: UInt64 = 1
    @Flag(inversion: .prefixedNo, help: "Store the noise-free intensities as ground truth.")
    var truthIntensities = true
    @Flag(help: "Also write the true probe to source_1/illumination.")
    var storeIllumination = false
    @Flag(inversion: .prefixedNo, help: "Record the zone plate and defocus in /entry_1/instrument_1/ns_optics, as an instrument's file does (recon, raw2cxi and stream build the first probe from them).")
    var recordOptics = true
    @Option(help: "Frames each rank computes and writes per collective round.")
    var batch = 8
    @Flag(help: "No progress lines.")
    var quiet = false

    func config() throws -> SimulationConfig {
        var detector: DetectorModel? = nil
        if raw {
            var d = DetectorModel()
            d.channels = channels
            d.overscan = overscan
            d.gain = gain
            d.seed = seed &+ 7
            detector = d
        }
        return SimulationConfig(
            geometry: geometry.geometry, zonePlate: optics.zonePlate,
            sample: TestSample(thickness: thickness, delta: delta, beta: beta, particles: particles, seed: seed),
            scan: Scan(pattern: try ScanPattern(parsing: scan), step: step, jitter: jitter, seed: seed),
            photonsPerFrame: photons, poisson: !noPoisson,
            beamstop: beamstopRadius.map { Beamstop(radius: $0, transmission: beamstopTransmission) },
            background: background, detector: detector, darkFrames: darkFrames, seed: seed,
            modePowers: try powers(), positionErrors: positionError > 0 || positionDrift > 0
                ? PositionErrors(rms: positionError, drift: positionDrift, seed: seed &+ 11) : nil)
    }

    /// The modes' relative powers from --probe-modes and --mode-powers.
    func powers() throws -> [Double]? {
        guard let text = modePowers else {
            guard probeModes > 1 else { return nil }
            // Each mode half the one before.
            return (0..<probeModes).map { pow(0.5, Double($0)) }
        }
        let values = try text.split(separator: ",").map { part -> Double in
            guard let v = Double(part.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--mode-powers: '\(part)' is not a number (give e.g. 70,20,10)")
            }
            return v
        }
        guard probeModes == 1 || values.count == probeModes else {
            throw ValidationError("--mode-powers gives \(values.count) powers for --probe-modes \(probeModes)")
        }
        return values
    }

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard probeModes >= 1 else { throw ValidationError("--probe-modes must be at least 1, got \(probeModes)") }
        let problems: [String]
        do { problems = try config().problems() } catch { throw ValidationError("\(error)") }
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }

    func run() throws {
        let cfg = try config()
        try withMPI { world in
            let image = try sampleImage.map { try ImageInput.read($0) }
            let sim = try Simulation(cfg, thickness: image)
            var options = SimulatedScanWriter.Options()
            options.batch = batch
            options.truthIntensities = truthIntensities
            options.storeIllumination = storeIllumination
            options.recordOptics = recordOptics
            options.command = CommandLine.arguments.joined(separator: " ")
            options.version = NanosurveyorVersion.string
            var reported = 0
            let summary = try SimulatedScanWriter.write(sim, to: output, comm: world, options: options) { done, total in
                guard !quiet, world.rank == 0, done * 10 / total > reported else { return }
                reported = done * 10 / total
                print("simulate: \(done)/\(total) frames")
            }
            if world.rank == 0 && !quiet {
                let g = cfg.geometry
                print(String(format: "simulate: wrote %@: %d frames (%@) of %dx%d, %d dark, object %dx%d at %.2f nm, %.1f MB in %.2f s",
                             output, summary.frames, cfg.scan.pattern.description, g.frameSize, g.frameSize,
                             summary.darkFrames, sim.object.height, sim.object.width, g.samplePixelSize * 1e9,
                             Double(summary.bytes) / 1e6, summary.seconds))
            }
        }
    }
}
