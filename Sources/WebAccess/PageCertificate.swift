import Foundation
import HummingbirdTLS
import NIOSSL

/// A server's HTTPS identity: a certificate chain and its private key, PEM
/// files (a facility's, or a self-signed pair: docs/viewer.md).
public struct PageCertificate: Sendable {
    public let configuration: TLSConfiguration

    /// PEM files are a few kilobytes; a larger file is not one.
    static let maxFileBytes = 1 << 20

    public init(certificateFile: String, keyFile: String) throws {
        for (what, path) in [("certificate", certificateFile), ("key", keyFile)] {
            let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
            guard let size else { throw AccessError("\(path): the TLS \(what) file cannot be read") }
            guard size <= Self.maxFileBytes else { throw AccessError("\(path): \(size) bytes is not a PEM \(what) file") }
        }
        let chain: [NIOSSLCertificate], key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificateFile) } catch {
            throw AccessError("\(certificateFile): not a PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw AccessError("\(certificateFile): holds no certificate") }
        do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
            throw AccessError("\(keyFile): not a PEM private key (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        self.configuration = configuration
    }
}
