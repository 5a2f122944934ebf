import Foundation

/// Strict JSON (RFC 8259) checked before a pipeline file is read: the
/// decoder accepts trailing commas and keeps one of two equal keys, so a
/// typo would change a setting silently. The first problem is reported with
/// its line and column; nesting is bounded, so no file can exhaust the stack.
public enum JSONSyntax {
    public struct Problem: Error, Equatable, CustomStringConvertible, Sendable {
        public let line: Int
        public let column: Int
        public let message: String
        public var description: String { "line \(line), column \(column): \(message)" }
    }

    /// The deepest nesting of lists and objects accepted.
    public static let maxDepth = 64

    /// Nil when `data` is one well-formed JSON value with no repeated key in any object.
    public static func problem(in data: Data) -> Problem? {
        var scanner = Scanner(bytes: Array(data))
        do {
            scanner.skipSpace()
            try scanner.value(depth: 0)
            scanner.skipSpace()
            if scanner.index < scanner.bytes.count { throw scanner.fail("text after the end of the document") }
            return nil
        } catch let p as Problem {
            return p
        } catch {
            return Problem(line: 1, column: 1, message: "\(error)")
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
            // A UTF-8 byte order mark is allowed before the value.
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
        }

        /// The problem at the current position (line and column count from 1, columns in characters).
        func fail(_ message: String) -> Problem {
            var line = 1, column = 1
            for b in bytes[..<min(index, bytes.count)] {
                if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
            }
            return Problem(line: line, column: column, message: message)
        }

        var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { index += 1 }
        }

        mutating func expect(_ b: UInt8, _ what: String) throws {
            guard current == b else { throw fail(current == nil ? "the document ends where \(what) was expected" : "expected \(what)") }
            index += 1
        }

        mutating func value(depth: Int) throws {
            guard let b = current else { throw fail("the document ends where a value was expected") }
            switch b {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            default: throw fail("expected a value (an object, a list, a string, a number, true, false or null)")
            }
        }

        mutating func object(depth: Int) throws {
            guard depth <= JSONSyntax.maxDepth else { throw fail("nested deeper than \(JSONSyntax.maxDepth) levels") }
            index += 1
            var keys = Set<String>()
            skipSpace()
            if current == UInt8(ascii: "}") { index += 1; return }
            while true {
                skipSpace()
                guard current == UInt8(ascii: "\"") else {
                    throw fail(current == UInt8(ascii: "}") ? "a comma before '}' (trailing commas are not JSON)" : "expected a key in double quotes")
                }
                let start = index
                let key = try string()
                guard keys.insert(key).inserted else {
                    index = start
                    throw fail("the key '\(key.prefix(64))' appears twice in this object")
                }
                skipSpace()
                try expect(UInt8(ascii: ":"), "':' after the key")
                skipSpace()
                try value(depth: depth)
                skipSpace()
                if current == UInt8(ascii: ",") { index += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                return
            }
        }

        mutating func array(depth: Int) throws {
            guard depth <= JSONSyntax.maxDepth else { throw fail("nested deeper than \(JSONSyntax.maxDepth) levels") }
            index += 1
            skipSpace()
            if current == UInt8(ascii: "]") { index += 1; return }
            while true {
                skipSpace()
                if current == UInt8(ascii: "]") { throw fail("a comma before ']' (trailing commas are not JSON)") }
                try value(depth: depth)
                skipSpace()
                if current == UInt8(ascii: ",") { index += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']'")
                return
            }
        }

        mutating func string() throws -> String {
            index += 1
            var out: [UInt8] = []
            while true {
                guard let b = current else { throw fail("a string is not closed") }
                switch b {
                case UInt8(ascii: "\""):
                    index += 1
                    guard let s = String(validating: out, as: UTF8.self) else { throw fail("a string is not valid UTF-8") }
                    return s
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let e = current else { throw fail("a string is not closed") }
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                    case UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): out.append(0x20)
                    case UInt8(ascii: "u"):
                        guard index + 4 < bytes.count, bytes[(index + 1)...(index + 4)].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }) else {
                            throw fail("'\\u' must be followed by four hexadecimal digits")
                        }
                        out += Array(bytes[(index - 1)...(index + 4)])
                        index += 4
                    default: throw fail("'\\\(Character(Unicode.Scalar(e)))' is not a JSON escape")
                    }
                    index += 1
                case 0..<0x20:
                    throw fail("a control character inside a string (write it as an escape, e.g. \\n)")
                default:
                    out.append(b)
                    index += 1
                }
            }
        }

        mutating func number() throws {
            func digits() -> Int {
                let start = index
                while let b = current, b >= 0x30 && b <= 0x39 { index += 1 }
                return index - start
            }
            if current == UInt8(ascii: "-") { index += 1 }
            if current == UInt8(ascii: "0") {
                index += 1
                if let b = current, b >= 0x30 && b <= 0x39 { throw fail("a number with a leading zero") }
            } else if digits() == 0 {
                throw fail("a number needs digits")
            }
            if current == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw fail("a number needs digits after '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                index += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard index + w.count <= bytes.count, Array(bytes[index..<(index + w.count)]) == w else {
                throw fail("expected a value (an object, a list, a string, a number, true, false or null)")
            }
            index += w.count
        }
    }
}
