import Foundation
import Pipeline

/// The pipeline files shipped with the program (`pipelines/` in the source
/// tree): the commands `raw2cxi`, `recon` and `stream` take their settings
/// from theirs when no `--pipeline` is given.
public enum ShippedPipelines {
    /// The folder: $NS_PIPELINES, else the source tree's when the program
    /// runs where it was built (so an edited file takes effect at once),
    /// else the copy the build placed beside the program.
    public static var directory: String {
        if let d = ProcessInfo.processInfo.environment["NS_PIPELINES"], !d.isEmpty { return d }
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Pipelines").path
        if FileManager.default.fileExists(atPath: source) { return source }
        let program = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        return program.appendingPathComponent("nanosurveyor_PipelineRuntime.resources/Pipelines").path
    }

    /// The shipped pipelines' names (their files without ".json").
    public static var names: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    public static func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name + ".json") }

    /// `nameOrPath` itself when such a file exists, else the shipped
    /// pipeline of that name when there is one, else `nameOrPath` (whose
    /// reading then fails with its own name).
    public static func locate(_ nameOrPath: String) -> String {
        if FileManager.default.fileExists(atPath: nameOrPath) { return nameOrPath }
        let shipped = path(nameOrPath)
        return FileManager.default.fileExists(atPath: shipped) ? shipped : nameOrPath
    }

    /// A command's parameters from `pipeline` (a file or a shipped name;
    /// nil: the shipped pipeline named like the stage type).
    public static func resolve(stageType: String, pipeline: String?, overrides: [CommandParameters.Override],
                               settings: [String] = []) throws -> CommandParameters {
        let file = locate(pipeline ?? stageType)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PipelineValidationError(file: file, issues: [.init(keyPath: "(file)", problem: "cannot be read")])
        }
        return try CommandParameters(stageType: stageType, file: label(file), data: data, registry: .standard,
                                     overrides: overrides, settings: settings)
    }

    /// A shipped file by the short path it has from the working directory
    /// when that is the source tree's root (`pipelines/recon.json`), else as found.
    public static func label(_ file: String) -> String {
        let short = "pipelines/" + (file as NSString).lastPathComponent
        let a = URL(fileURLWithPath: short).resolvingSymlinksInPath().path, b = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
        return a == b ? short : file
    }
}
