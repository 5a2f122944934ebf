import Foundation
import Hummingbird

/// Who may use the page. On loopback without a token, whoever can reach the
/// port is on this machine (as a Jupyter-less workstation expects). With a
/// token (always beyond loopback), every request needs it: opened once as
/// `/?token=T`, which sets an HttpOnly cookie and drops it from the address,
/// or sent as `Authorization: Bearer T` by a script. Whatever the token, a
/// request a browser marks as coming from another site's page is refused,
/// and one that changes anything must say it comes from this page: a
/// cookie is sent by the browser on every site's behalf, an Origin is not
/// forged by it.
public struct PageAccess: Sendable {
    public let token: String?
    /// Whether the page is served over HTTPS (the cookie is then `Secure`).
    public let https: Bool

    public init(token: String?, https: Bool) {
        self.token = token
        self.https = https
    }

    public static let cookie = "ns_token"
    /// A token file larger than this is not one.
    static let maxTokenFileBytes = 4096

    /// 32 random bytes in hex, from the system's secure generator.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// A token from a file (its first line): readable by its owner only, 16 to
    /// 256 characters that need no escaping in a URL or a cookie.
    public static func token(fromFile path: String) throws -> String {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
              (attributes[.type] as? FileAttributeType) == .typeRegular else {
            throw AccessError("\(path): the token file cannot be read, or is not a regular file")
        }
        let size = (attributes[.size] as? Int) ?? 0, mode = (attributes[.posixPermissions] as? Int) ?? 0
        guard size <= maxTokenFileBytes else { throw AccessError("\(path): \(size) bytes is not a token file (at most \(maxTokenFileBytes))") }
        guard mode & 0o077 == 0 else {
            throw AccessError(String(format: "%@: others may read this token file (mode %o): chmod 600 %@", path, mode, path))
        }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard (16...256).contains(token.count), token.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) }) else {
            throw AccessError("\(path): the token must be 16 to 256 letters, digits, '-', '.', '_' or '~' on the first line")
        }
        return token
    }

    /// Equal strings in time that does not depend on where they differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

public struct AccessError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// PageAccess applied to every request, the WebSocket's upgrade included.
public struct AccessGuard<Context: RequestContext>: RouterMiddleware {
    let access: PageAccess
    /// Who refuses, in the refusal's text ("ns-mpirun view").
    let service: String

    public init(access: PageAccess, service: String) {
        self.access = access
        self.service = service
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let changes = request.method != .get && request.method != .head
        let origin = request.headers[.origin]
        if let origin, !sameOrigin(origin, request) {
            return refuse(.forbidden, "requests from another site's page (\(origin.prefix(80))) are refused")
        }
        guard let token = access.token else { return try await next(request, context) }
        if let offered = request.uri.queryParameters["token"].map(String.init), PageAccess.same(offered, token) {
            // The token leaves the address bar (and the history) at once.
            var response = Response.redirect(to: request.uri.path.isEmpty ? "/" : request.uri.path)
            response.setCookie(Cookie(name: PageAccess.cookie, value: token, path: "/", secure: access.https, httpOnly: true, sameSite: .strict))
            return response
        }
        if let bearer = request.headers[.authorization], bearer.hasPrefix("Bearer "), PageAccess.same(String(bearer.dropFirst(7)), token) {
            return try await next(request, context)
        }
        if let cookie = request.cookies[PageAccess.cookie], PageAccess.same(cookie.value, token) {
            // A cookie rides along with any site's request; a change must show it comes from this page.
            guard !changes || origin != nil else { return refuse(.forbidden, "a change needs the page's Origin header") }
            return try await next(request, context)
        }
        return refuse(.unauthorized, "this server needs its token: open the address it printed at start (/?token=...), or send Authorization: Bearer TOKEN")
    }

    /// The Origin a browser sent names this server (scheme, host and port).
    func sameOrigin(_ origin: String, _ request: Request) -> Bool {
        guard let host = request.head.authority else { return false }
        return origin == (access.https ? "https://" : "http://") + host
    }

    func refuse(_ status: HTTPResponse.Status, _ why: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: "\(service): \(why)\n")))
    }
}
