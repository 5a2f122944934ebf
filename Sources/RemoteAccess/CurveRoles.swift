import Foundation
import SwiftZMQ

/// The serving side of CURVE for one ZeroMQ context: this program's key
/// pair, and the ZAP handler that lets in the listed clients (and holders of
/// this program's own key: a viewer started beside the session uses it).
public final class CurveServer: @unchecked Sendable {
    public let certificate: CurveCertificate
    public let authenticator: ZAPAuthenticator

    /// Loads the keys and installs the handler on `context`; call before any of its sockets binds.
    public init(context: ZMQContext, secretFile: String, clientsDirectory: String, log: @escaping (String) -> Void) throws {
        let certificate = try CurveCertificate.load(secretFile, secret: true)
        self.certificate = certificate
        let clients = try AllowedKeys(directory: clientsDirectory, log: log, trusted: [certificate.publicKey: certificate.name])
        authenticator = try ZAPAuthenticator(context: context, clients: clients, log: log)
    }

    /// Makes `socket` a CURVE server; before it binds.
    public func secure(_ socket: ZMQSocket) throws {
        try socket.setCurveServer(secretKey: certificate.secretKey!)
    }

    public func stop() { authenticator.stop() }
}

/// The connecting side: this program's key pair and the server's public key.
public struct CurveClient: Sendable {
    public let certificate: CurveCertificate
    public let serverKey: String

    /// `serverFile`: the server's public certificate (its NAME.key; a secret one serves as well).
    public init(secretFile: String, serverFile: String) throws {
        certificate = try CurveCertificate.load(secretFile, secret: true)
        serverKey = try CurveCertificate.load(serverFile, secret: false).publicKey
    }

    /// Makes `socket` a CURVE client of the server; before it connects.
    public func secure(_ socket: ZMQSocket) throws {
        try socket.setCurveClient(serverKey: serverKey, publicKey: certificate.publicKey, secretKey: certificate.secretKey!)
    }
}
