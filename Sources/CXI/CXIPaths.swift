/// Where things live in a CXI 1.6 file (cxidb), and the project's own
/// additions, which other tools ignore.
public enum CXIPaths {
    public static let version = "/cxi_version"
    public static let entry = "/entry_1"
    public static let detector = "/entry_1/instrument_1/detector_1"
    public static let data = "/entry_1/instrument_1/detector_1/data"
    public static let dark = "/entry_1/instrument_1/detector_1/data_dark"
    public static let mask = "/entry_1/instrument_1/detector_1/mask"
    public static let distance = "/entry_1/instrument_1/detector_1/distance"
    public static let xPixelSize = "/entry_1/instrument_1/detector_1/x_pixel_size"
    public static let yPixelSize = "/entry_1/instrument_1/detector_1/y_pixel_size"
    public static let cornerPosition = "/entry_1/instrument_1/detector_1/corner_position"
    public static let energy = "/entry_1/instrument_1/source_1/energy"
    public static let wavelength = "/entry_1/instrument_1/source_1/wavelength"
    public static let illumination = "/entry_1/instrument_1/source_1/illumination"
    /// With several probe modes: each one's share of the power, beside `illumination` (modes, y, x).
    public static let modePowers = "/entry_1/instrument_1/source_1/ns_mode_powers"
    public static let translation = "/entry_1/sample_1/geometry_1/translation"
    public static let dataLink = "/entry_1/data_1/data"
    public static let translationLink = "/entry_1/data_1/translation"
    /// Raw fast-CCD layout (readout channels, overscan, gain) for preprocessing.
    public static let readout = "/entry_1/instrument_1/detector_1/ns_readout"
    /// The zone plate and defocus that made the illumination (see CXIOptics).
    public static let optics = "/entry_1/instrument_1/ns_optics"
    /// Simulation ground truth: object, probe, clean intensities, detector artefacts.
    public static let truth = "/entry_1/ns_truth"
    /// Preprocessing's STXM and differential phase contrast images.
    public static let scanImages = "/entry_1/ns_scan_images"
    /// A reconstruction's object (see ReconstructionWriter).
    public static let image = "/entry_1/image_1/data"

    /// Places other tools put the frames, translations and mask, in the order tried.
    public static let dataCandidates = [dataLink, data]
    public static let translationCandidates = [translationLink, translation, "/entry_1/sample_1/geometry/translation",
                                        "/entry_1/sample_3/geometry/translation"]
}
