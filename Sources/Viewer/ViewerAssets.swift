import Foundation
import Hummingbird

/// The page's files, shipped with the program (no CDN: beamline networks
/// are closed) and read once at start.
struct ViewerAssets: Sendable {
    private let files: [String: (type: String, bytes: [UInt8])]
    static let names = ["index.html": "text/html; charset=utf-8", "files.html": "text/html; charset=utf-8",
                        "common.js": "text/javascript; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8",
                        "files.js": "text/javascript; charset=utf-8", "viewer.css": "text/css; charset=utf-8"]

    static func load() throws -> ViewerAssets {
        var files: [String: (String, [UInt8])] = [:]
        for (name, type) in names {
            guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Assets"),
                  let data = try? Data(contentsOf: url) else {
                throw ViewerError("the viewer's page file \(name) is missing from \(Bundle.module.bundlePath): reinstall ns-mpirun with its resource bundle")
            }
            files[name] = (type, Array(data))
        }
        return ViewerAssets(files: files)
    }

    func response(_ name: String) -> Response {
        guard let f = files[name] else {
            return Response(status: .notFound, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "no such file: \(name.prefix(64))\n")))
        }
        return Response(status: .ok, headers: [.contentType: f.type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(bytes: f.bytes)))
    }
}

public struct ViewerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
