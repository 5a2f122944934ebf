import Foundation
import Recon
import SwiftHDF5

/// The focusing optics in `/entry_1/instrument_1/ns_optics`: float64
/// lengths in metres, so a reader can rebuild the illumination the way the
/// instrument made it. Other tools ignore the group.
enum CXIOptics {
    static func write(_ optics: ZonePlate, to file: HDF5File) throws {
        let group = try file.createGroup(CXIPaths.optics)
        try group.setAttribute("description", string: "Fresnel zone plate; the sample sits at focus + defocus (positive downstream)")
        var values: [(String, Double)] = [("diameter", optics.diameter), ("outer_zone_width", optics.outerZoneWidth),
                                          ("central_stop", optics.centralStop), ("defocus", optics.defocus)]
        if let osa = optics.osaDiameter { values += [("osa_diameter", osa), ("osa_distance", optics.osaDistance)] }
        for (name, value) in values {
            let d = try group.write(scalar: value, to: name)
            try d.setAttribute("units", string: "m")
        }
    }

    /// nil when the file records no optics; an error naming the dataset when
    /// a recorded value is missing or not physical.
    static func read(from file: HDF5File, path: String) throws -> ZonePlate? {
        guard file.exists(CXIPaths.optics) else { return nil }
        func value(_ name: String) throws -> Double {
            let p = CXIPaths.optics + "/" + name
            guard file.exists(p) else { throw CXIError(file: path, dataset: p, problem: "missing: the optics group needs it") }
            return try file.readScalar(p, as: Double.self)
        }
        var optics = ZonePlate(diameter: try value("diameter"), outerZoneWidth: try value("outer_zone_width"),
                               centralStop: try value("central_stop"), defocus: try value("defocus"))
        if file.exists(CXIPaths.optics + "/osa_diameter") {
            optics.osaDiameter = try value("osa_diameter")
            optics.osaDistance = try value("osa_distance")
        }
        if let problem = optics.recordProblem { throw CXIError(file: path, dataset: CXIPaths.optics, problem: problem) }
        return optics
    }
}
