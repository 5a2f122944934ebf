import Foundation

/// A folder of public certificates (NAME.key): the clients a server lets in,
/// or the operators who may change a session. Read again when the folder
/// changes, so a key is added or withdrawn without a restart.
public final class AllowedKeys: @unchecked Sendable {
    public let directory: String
    private let lock = NSLock()
    private var names: [String: String] = [:]
    private var readAt: Date?
    private var problems: [String] = []
    private var listed = 0
    private let log: (String) -> Void
    /// Keys let in whatever the folder holds (a server's own).
    private let trusted: [String: String]

    /// More files than any facility's list of users is not a key folder.
    static let maxFiles = 10_000

    /// Reads the folder now: one that cannot be read, or holds no key, is an error.
    public init(directory: String, log: @escaping (String) -> Void = { _ in }, trusted: [String: String] = [:]) throws {
        self.directory = directory
        self.log = log
        self.trusted = trusted
        try reload()
        guard listed > 0 else {
            throw KeyError(directory, "holds no public certificate (NAME.key)\(problems.isEmpty ? "" : ": " + problems.joined(separator: "; "))")
        }
    }

    /// The holder's name (the certificate's file name) of a listed key; nil when not listed.
    public func name(of publicKey: String) -> String? {
        refreshIfChanged()
        lock.lock()
        defer { lock.unlock() }
        return names[publicKey]
    }

    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return names.count
    }

    private var modified: Date? {
        (try? FileManager.default.attributesOfItem(atPath: directory))?[.modificationDate] as? Date
    }

    private func refreshIfChanged() {
        lock.lock()
        let stale = modified.map { m in readAt.map { m > $0 } ?? true } ?? false
        lock.unlock()
        guard stale else { return }
        do { try reload() } catch { log("keys: \(error); the last list read stays in force") }
    }

    private func reload() throws {
        let stamp = Date()
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw KeyError(directory, "cannot be read as a folder of public certificates: \(error.localizedDescription)")
        }
        guard files.count <= Self.maxFiles else { throw KeyError(directory, "holds \(files.count) files; at most \(Self.maxFiles) are read") }
        var found = trusted, bad: [String] = [], fromFolder = 0
        for file in files.sorted() where file.hasSuffix(".key") && !file.hasPrefix(".") {
            do {
                let cert = try CurveCertificate.load((directory as NSString).appendingPathComponent(file), secret: false)
                found[cert.publicKey] = found[cert.publicKey] ?? cert.name
                fromFolder += 1
            } catch {
                bad.append("\(error)")
            }
        }
        for problem in bad { log("keys: \(problem) (left out)") }
        lock.lock()
        names = found
        problems = bad
        listed = fromFolder
        readAt = stamp
        lock.unlock()
    }
}
