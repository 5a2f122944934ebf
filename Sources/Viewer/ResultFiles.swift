import Foundation

/// The CXI files under `view --files DIR` that the page may open. Names are
/// relative to DIR; a name that leads outside it (by `..`, an absolute path
/// or a link) is refused, so the page cannot read anything else.
public struct ResultFiles: Sendable {
    public struct Entry: Sendable {
        public var name: String
        public var bytes: Int
        public var modified: Date
    }

    /// DIR with links resolved.
    public let root: String
    static let maxListed = 2000
    static let maxDepth = 6
    /// Entries walked before the listing stops (a folder of a million files answers in bounded time).
    static let maxVisited = 50_000
    static let maxNameBytes = 1024

    public init(directory: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ViewerError("--files \(directory): no such directory")
        }
        guard FileManager.default.isReadableFile(atPath: directory) else { throw ViewerError("--files \(directory): not readable") }
        root = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// The newest first, at most `maxListed` (`truncated` says when more were there or the
    /// walk stopped); links and hidden files are left out, and files more than `maxDepth` levels below the root.
    public func list() -> (files: [Entry], truncated: Bool) {
        let keys: [URLResourceKey] = [.isRegularFileKey, .isSymbolicLinkKey, .fileSizeKey, .contentModificationDateKey]
        guard let walk = FileManager.default.enumerator(at: URL(fileURLWithPath: root), includingPropertiesForKeys: keys,
                                                        options: [.skipsHiddenFiles]) else { return ([], false) }
        var found: [Entry] = []
        var truncated = false
        let prefix = root.hasSuffix("/") ? root : root + "/"
        var visited = 0
        for case let url as URL in walk {
            visited += 1
            if visited > Self.maxVisited { truncated = true; break }
            if walk.level > Self.maxDepth { walk.skipDescendants(); continue }
            guard url.pathExtension.lowercased() == "cxi",
                  let v = try? url.resourceValues(forKeys: Set(keys)), v.isRegularFile == true, v.isSymbolicLink != true else { continue }
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { continue }
            found.append(Entry(name: String(path.dropFirst(prefix.count)), bytes: v.fileSize ?? 0,
                               modified: v.contentModificationDate ?? .distantPast))
        }
        found.sort { ($0.modified, $1.name) > ($1.modified, $0.name) }
        if found.count > Self.maxListed { truncated = true; found.removeLast(found.count - Self.maxListed) }
        return (found, truncated)
    }

    /// The file a page's name stands for, checked to be a CXI file inside the root.
    public func resolve(_ name: String) throws -> String {
        guard !name.isEmpty, name.utf8.count <= Self.maxNameBytes, !name.contains("\0") else {
            throw ViewerError("file name: empty, over \(Self.maxNameBytes) bytes, or holding a NUL")
        }
        let shown = String(name.prefix(200))
        guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
            throw ViewerError("\(shown): names are relative to the files folder, without '..'")
        }
        guard name.lowercased().hasSuffix(".cxi") else { throw ViewerError("\(shown): only .cxi files are shown") }
        let path = URL(fileURLWithPath: root).appendingPathComponent(name).standardizedFileURL.resolvingSymlinksInPath().path
        guard path.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw ViewerError("\(shown): leads outside the files folder")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ViewerError("\(shown): no such file under the files folder")
        }
        return path
    }
}
