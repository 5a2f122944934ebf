import Foundation

/// Which ZeroMQ endpoints stay on this machine. Anything else crosses a
/// network and must be encrypted and authenticated (CURVE): the session
/// refuses to start with a plaintext endpoint beyond loopback.
public enum EndpointPolicy {
    /// ipc:// and inproc:// never leave the host; tcp:// stays on it for a
    /// 127.x.x.x, ::1 or localhost host. tcp://*, 0.0.0.0, an interface name
    /// or any other address does not.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        var address = String(endpoint.dropFirst(6))
        // tcp://source;destination names the destination last.
        if let semicolon = address.lastIndex(of: ";") { address = String(address[address.index(after: semicolon)...]) }
        guard let colon = address.lastIndex(of: ":") else { return false }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return isLoopbackHost(host)
    }

    public static func isLoopbackHost(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// The refusal for a plaintext endpoint beyond loopback, saying how to secure it.
    public static func plaintextRefusal(_ what: String, _ endpoint: String, needs: String) -> String {
        "\(what) \(endpoint) reaches beyond this host, and unencrypted ZeroMQ is allowed on loopback only: " +
            "give \(needs) (make key pairs with `ns-mpirun keys generate DIR --name NAME`; docs/security.md), " +
            "or bind/connect to 127.0.0.1"
    }
}
