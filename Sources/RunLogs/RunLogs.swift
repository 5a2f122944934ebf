import Foundation
import Logging

/// One file per rank under a run directory, every line stamped with the
/// time (UTC, milliseconds, so lines of all ranks sort into one timeline)
/// and the rank: `2026-11-26T20:22:10.123Z rank 1 info: ...`.
public final class RankLogFile: @unchecked Sendable {
    public let rank: Int
    public let path: String?
    private let handle: FileHandle?
    private let echo: Bool
    private let lock = NSLock()
    private var lost = 0
    /// Lines the file could not take since it last could (a full disk).
    public var linesLost: Int { lock.withLock { lost } }
    private let formatter: DateFormatter

    /// `directory` nil: no file; `echo`: also print the message (without the stamp) on standard output.
    public init(rank: Int, directory: String?, echo: Bool) throws {
        self.rank = rank
        self.echo = echo
        formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        if let directory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let p = (directory as NSString).appendingPathComponent(RunLogs.fileName(rank: rank))
            if !FileManager.default.fileExists(atPath: p) { _ = FileManager.default.createFile(atPath: p, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: p) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: p])
            }
            h.seekToEndOfFile()
            handle = h
            path = p
        } else {
            handle = nil
            path = nil
        }
    }

    private static func complain(_ text: String) {
        try? FileHandle.standardError.write(contentsOf: Data((text + "\n").utf8))
    }

    public func write(level: Logger.Level, _ message: String) {
        let line = "\(formatter.string(from: Date())) rank \(rank) \(level): \(message)\n"
        lock.lock()
        defer { lock.unlock() }
        if let handle {
            do {
                try handle.write(contentsOf: Data(line.utf8))
                if lost > 0 {
                    Self.complain("rank \(rank): log \(path ?? ""): writing again after \(lost) lines were lost")
                    lost = 0
                }
            } catch {
                // A full disk must not end the session: the line is lost, said once per outage.
                if lost == 0 { Self.complain("rank \(rank): log \(path ?? ""): cannot write (\(error)); lines are lost until it can") }
                lost += 1
            }
        }
        if echo {
            print(message)
            fflush(nil)
        }
    }
}

/// A swift-log handler writing to a rank's file.
public struct RankLogHandler: LogHandler {
    public let file: RankLogFile
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info

    public init(file: RankLogFile) { self.file = file }

    public func log(event: LogEvent) {
        var text = "\(event.message)"
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        if !all.isEmpty { text += " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
        file.write(level: event.level, text)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

/// Reading a run directory's rank logs as one timeline.
public enum RunLogs {
    public static func fileName(rank: Int) -> String { String(format: "rank-%04d.log", rank) }

    /// The rank log files in `directory` (or its `logs/` folder), by rank.
    public static func files(in directory: String) -> [String] {
        for dir in [(directory as NSString).appendingPathComponent("logs"), directory] {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
                .filter { $0.hasPrefix("rank-") && $0.hasSuffix(".log") }.sorted()
            if !names.isEmpty { return names.map { (dir as NSString).appendingPathComponent($0) } }
        }
        return []
    }

    /// Follows files as they grow: each call returns the complete lines
    /// added since the last, merged in time order (a stable sort on the
    /// stamp, so one rank's lines keep their order).
    public final class Reader {
        private var offsets: [String: UInt64] = [:]
        private var partial: [String: String] = [:]
        public let directory: String

        public init(directory: String) { self.directory = directory }

        public func next() -> [String] {
            var lines: [(String, Int)] = []
            var order = 0
            for path in RunLogs.files(in: directory) {
                guard let h = FileHandle(forReadingAtPath: path) else { continue }
                defer { try? h.close() }
                let offset = offsets[path] ?? 0
                h.seek(toFileOffset: offset)
                let data = h.readDataToEndOfFile()
                offsets[path] = offset + UInt64(data.count)
                var text = (partial[path] ?? "") + String(decoding: data, as: UTF8.self)
                if let last = text.lastIndex(of: "\n") {
                    partial[path] = String(text[text.index(after: last)...])
                    text = String(text[...last])
                } else {
                    partial[path] = text
                    continue
                }
                for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                    lines.append((String(line), order))
                    order += 1
                }
            }
            // The stamp is fixed-width ISO 8601 in UTC: text order is time order.
            return lines.sorted { ($0.0.prefix(24), $0.1) < ($1.0.prefix(24), $1.1) }.map(\.0)
        }
    }
}
