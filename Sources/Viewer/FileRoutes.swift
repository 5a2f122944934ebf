import Foundation
import Hummingbird
import HummingbirdWebSocket

/// The files page's requests: the list of CXI files under `--files`, one
/// file's overview, one frame with its histogram, and the histogram of all
/// its photons. Every reply that fails says which file and what is wrong.
extension ViewerServer {
    func addFileRoutes(_ router: Router<BasicWebSocketRequestContext>) {
        let files = self.files
        let cache = PhotonCache()
        router.get("/api/files") { _, _ in
            guard let files else { return Self.noFiles }
            let (list, truncated) = await Self.detached { files.list() }
            return Self.json(["root": files.root, "truncated": truncated, "limit": ResultFiles.maxListed,
                              "files": list.map { ["name": $0.name, "bytes": $0.bytes, "modified": $0.modified.timeIntervalSince1970] }])
        }
        router.get("/api/files/open") { request, _ in
            await Self.fileReply(files, request) { file, _ in try file.overview() }
        }
        router.get("/api/files/frame") { request, _ in
            await Self.fileReply(files, request) { file, request in
                guard let text = request.uri.queryParameters["index"], let index = Int(text) else {
                    throw ViewerError("\(file.name): give the frame as index=N (a whole number)")
                }
                return try file.frame(index)
            }
        }
        router.get("/api/files/photons") { request, _ in
            await Self.fileReply(files, request, type: "application/json") { file, _ in
                let key = cache.key(file.path)
                if let hit = cache.get(key) { return hit }
                guard let bytes = try? JSONSerialization.data(withJSONObject: try file.photons(), options: [.sortedKeys]) else {
                    throw ViewerError("\(file.name): the histogram cannot be sent as JSON")
                }
                cache.put(key, Array(bytes))
                return Array(bytes)
            }
        }
    }

    static var noFiles: Response { json(["ok": false, "error": "this viewer was started without --files DIR"], status: .notFound) }

    /// Opens the file the request names (off the server's threads) and answers with `work`'s bytes:
    /// binary for images, JSON for the photons' histogram; an error as JSON naming the file.
    static func fileReply(_ files: ResultFiles?, _ request: Request, type: String = "application/octet-stream",
                          _ work: @escaping @Sendable (ResultFile, Request) throws -> [UInt8]) async -> Response {
        guard let files else { return noFiles }
        let name = request.uri.queryParameters["name"].map(String.init) ?? ""
        let outcome: Result<[UInt8], Error> = await detached {
            Result { try work(try ResultFile(path: try files.resolve(name), name: name), request) }
        }
        switch outcome {
        case .success(let bytes):
            return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .failure(let error):
            return json(["ok": false, "error": "\(error)"], status: .unprocessableContent)
        }
    }
}

/// The all-photons histogram reads every frame: kept per file while its size and time are unchanged.
final class PhotonCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: [UInt8]] = [:]

    func key(_ path: String) -> String {
        let a = try? FileManager.default.attributesOfItem(atPath: path)
        return "\(path)|\((a?[.size] as? Int) ?? -1)|\(((a?[.modificationDate] as? Date) ?? .distantPast).timeIntervalSince1970)"
    }

    func get(_ key: String) -> [UInt8]? { lock.lock(); defer { lock.unlock() }; return entries[key] }

    func put(_ key: String, _ value: [UInt8]) {
        lock.lock(); defer { lock.unlock() }
        if entries.count >= 64 { entries.removeAll() }
        entries[key] = value
    }
}
