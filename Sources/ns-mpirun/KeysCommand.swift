import ArgumentParser
import Foundation
import RemoteAccess

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "CURVE key pairs for endpoints beyond loopback (docs/security.md).",
        subcommands: [Generate.self, Show.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Writes a new key pair: DIR/NAME.key (public: give it to the servers this key connects to, or to the clients that connect here) and DIR/NAME.key_secret (mode 0600: keep it here). Existing keys are never overwritten.",
            discussion: "The files are ZeroMQ certificates, as pyzmq's zmq.auth.load_certificate reads them.")

        @Argument(help: "The folder to write the pair into (made if missing).")
        var directory: String
        @Option(help: "The pair's name, which logs show for its holder (default: this host's short name).")
        var name: String?

        func run() throws {
            let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "key"
            let certificate = try CurveCertificate.generate(name: name ?? host)
            let files = try certificate.write(to: directory)
            print("keys: wrote \(files.publicFile) (public key \(certificate.publicKey)) and \(files.secretFile) (secret, mode 0600)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prints a certificate's name and public key (never the secret one).")

        @Argument(help: "A NAME.key or NAME.key_secret file.")
        var file: String

        func run() throws {
            let certificate = try CurveCertificate.load(file, secret: false)
            print("\(certificate.name) \(certificate.publicKey)")
        }
    }
}
