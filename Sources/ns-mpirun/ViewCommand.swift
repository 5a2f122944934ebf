import ArgumentParser
import Foundation
import RemoteAccess
import WebAccess
import Viewer

struct ViewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "The web front-end: watch and steer a live session in a browser, and browse result files.",
        discussion: """
            A separate process (not an MPI rank): it subscribes to a running session's publish port, passes the \
            page's requests to its control port, and serves the page on --http with a WebSocket for live updates. \
            Every file the page needs is served by this program (no internet access is needed). The session cannot \
            tell whether a viewer is connected. `stream --view HOST:PORT` starts one beside rank 0. With --files DIR \
            the page also lists the CXI files under DIR and shows each one's object, probe, errors, positions, scan \
            images, frame histograms and metadata. On loopback the page is open to this machine's users; beyond \
            loopback it is served over HTTPS (--tls-cert, --tls-key) and only to holders of its token (--token-file, \
            or one made at start and printed in the address). Or keep it on loopback and tunnel it \
            (ssh -L 8080:127.0.0.1:8080 HOST). docs/viewer.md, docs/security.md.
            """)

    @Option(help: "The session's publish and control endpoints, comma-separated (as `stream --publish ... --control ...` bound them).")
    var session: String?
    @Option(help: "A folder whose CXI files (and its subfolders') the page lists and opens.")
    var files: String?
    @Option(help: "Address to serve the page on, HOST:PORT (port 0: any free port; the URL is printed).")
    var http = "127.0.0.1:8080"
    @Option(help: "Seconds without a status message before the page says the session is unreachable.")
    var silence = 5.0
    @Option(help: "HTTPS: the page's certificate (chain), a PEM file; with --tls-key. Needed to serve beyond loopback.")
    var tlsCert: String?
    @Option(help: "HTTPS: the certificate's private key, a PEM file.")
    var tlsKey: String?
    @Option(help: "A file whose first line is the token every request must carry (mode 0600); beyond loopback, without it, a token is made and printed in the address.")
    var tokenFile: String?
    @Option(help: "This viewer's key pair, a NAME.key_secret file, for a session whose ports speak CURVE (its public key must be in the session's --curve-clients).")
    var curveSecret: String?
    @Option(help: "The session's public key (its NAME.key), with --curve-secret.")
    var sessionKey: String?
    @Option(help: .hidden)
    var parent: Int32?

    var endpoints: (publish: String, control: String)? {
        get throws {
            guard let session else { return nil }
            let parts = session.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts.allSatisfy({ $0.hasPrefix("tcp://") || $0.hasPrefix("ipc://") }) else {
                throw ValidationError("--session takes the publish and control endpoints, comma-separated (tcp://127.0.0.1:5557,tcp://127.0.0.1:5556), got '\(session)'")
            }
            for endpoint in parts where curveSecret == nil && !EndpointPolicy.isLocal(endpoint) {
                throw ValidationError(EndpointPolicy.plaintextRefusal("--session's", endpoint, needs: "--curve-secret FILE and --session-key FILE"))
            }
            return (parts[0], parts[1])
        }
    }

    var address: (host: String, port: Int) {
        get throws {
            let listen: ListenAddress
            do { listen = try ListenAddress(http, option: "--http") } catch { throw ValidationError("\(error)") }
            let (host, port) = (listen.host, listen.port)
            guard EndpointPolicy.isLoopbackHost(host) || (tlsCert != nil && tlsKey != nil) else {
                throw ValidationError("""
                    --http \(http): without --tls-cert and --tls-key the viewer serves loopback only (127.0.0.1, ::1, localhost); \
                    beyond it, it serves HTTPS to holders of its token. Or tunnel it: ssh -L 8080:127.0.0.1:8080 HOST
                    """)
            }
            return (host, port)
        }
    }

    func validate() throws {
        guard session != nil || files != nil else {
            throw ValidationError("give --session PUB,CONTROL (a live session), --files DIR (result files), or both")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard (curveSecret == nil) == (sessionKey == nil) else {
            throw ValidationError("--curve-secret and --session-key go together: this viewer's key pair, and the session's public key")
        }
        guard session != nil || curveSecret == nil else { throw ValidationError("--curve-secret is for a --session's ports") }
        _ = try endpoints
        _ = try address
        guard silence > 0, silence.isFinite else { throw ValidationError("--silence must be a positive number of seconds, got \(silence)") }
    }

    func run() throws {
        let endpoints = try endpoints
        let (host, port) = try address
        let hub = LiveHub()
        let curve: CurveClient?
        do { curve = try curveSecret.map { try CurveClient(secretFile: $0, serverFile: sessionKey!) } } catch { throw ValidationError("\(error)") }
        let link = try endpoints.map { try SessionLink(publish: $0.publish, control: $0.control, hub: hub, silence: silence, curve: curve) }
        try link?.start()
        let results = try files.map { dir in
            do { return try ResultFiles(directory: dir) } catch { throw ValidationError("\(error)") }
        }
        let token: String?, tls: PageCertificate?
        do {
            token = try tokenFile.map { try PageAccess.token(fromFile: $0) } ?? (EndpointPolicy.isLoopbackHost(host) ? nil : PageAccess.newToken())
            tls = try tlsCert.map { try PageCertificate(certificateFile: $0, keyFile: tlsKey!) }
        } catch {
            throw ValidationError("\(error)")
        }
        let server = try ViewerServer(host: host, port: port, link: link, hub: hub, files: results, token: token, tls: tls, silence: silence)
        let done = DispatchSemaphore(value: 0)
        if let parent { Self.endWith(parent) }
        let failure = LockedError()
        Task {
            do {
                try await server.run { url in
                    var serves: [String] = []
                    if let endpoints { serves.append("session: publish \(endpoints.publish), control \(endpoints.control)") }
                    if let results { serves.append("files: \(results.root)") }
                    FileHandle.standardOutput.write(Data("view: \(url) (\(serves.joined(separator: "; ")))\n".utf8))
                }
            } catch {
                failure.set(error)
            }
            done.signal()
        }
        done.wait()
        server.simulator.stop()
        link?.stop()
        if let error = failure.get() { throw ValidationError("view: cannot serve on \(http): \(error)") }
    }
}

extension ViewCommand {
    /// Started by `stream --view`: the viewer ends when the session's rank 0 does, however it ends.
    static func endWith(_ parent: Int32) {
        let t = Thread {
            while kill(parent, 0) == 0 && getppid() == parent { Thread.sleep(forTimeInterval: 1) }
            kill(getpid(), SIGTERM)
        }
        t.start()
    }
}

/// The server task's error, read on the main thread once it ends.
final class LockedError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    func set(_ e: Error) { lock.lock(); error = e; lock.unlock() }
    func get() -> Error? { lock.lock(); defer { lock.unlock() }; return error }
}
