import Foundation

/// An HTTP server's HOST:PORT as given on a command line (IPv6 in brackets; port 0: any free port).
public struct ListenAddress: Sendable, Equatable {
    public let host: String
    public let port: Int

    public init(_ text: String, option: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port),
              colon > text.startIndex else {
            throw AccessError("\(option) takes HOST:PORT (127.0.0.1:8080), got '\(text)'")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }

    /// `scheme://HOST:PORT/` with a port actually bound.
    public func url(scheme: String, port bound: Int) -> String {
        "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(bound)/"
    }
}
