import Foundation
import Pipeline
import Testing

/// Pipeline files are strict JSON: each problem says where it is.
struct JSONSyntaxTests {
    static let cases: [(String, Int, Int, String)] = [
        ("{\n  \"a\": 1,\n  \"a\": 2\n}", 3, 3, "the key 'a' appears twice"),
        ("{\n  \"stages\": [\n    {\"name\": \"x\",}\n  ]\n}", 3, 18, "a comma before '}'"),
        ("[1, 2,]", 1, 7, "a comma before ']'"),
        ("{\"a\": 01}", 1, 8, "leading zero"),
        ("{\"a\": tru}", 1, 7, "expected a value"),
        ("{\"a\": \"b\n\"}", 1, 9, "control character"),
        ("{\"a\": 1} x", 1, 10, "text after the end"),
        ("{\"a\": ", 1, 7, "the document ends"),
        ("{\"é\": \"\\q\"}", 1, 9, "'\\q' is not a JSON escape"),
        (String(repeating: "[", count: 65) + String(repeating: "]", count: 65), 1, 65, "nested deeper than 64"),
    ]

    @Test(arguments: 0..<cases.count)
    func problemsNameTheirLineAndColumn(_ k: Int) {
        let (text, line, column, message) = Self.cases[k]
        let p = JSONSyntax.problem(in: Data(text.utf8))
        #expect(p?.line == line && p?.column == column && p?.message.contains(message) == true, "\(text): \(String(describing: p))")
    }

    @Test func wellFormedDocumentsPass() {
        for text in ["{}", "[]", "0", "-1.5e+3", "\"\\u00e9\\n\"", "{\"a\": [true, false, null, {\"b\": \"c\"}], \"b\": {\"a\": 1}}",
                     "\u{FEFF}{\"a\": 1}", String(repeating: "[", count: 64) + String(repeating: "]", count: 64)] {
            #expect(JSONSyntax.problem(in: Data(text.utf8)) == nil, "\(text)")
        }
    }

    /// The shipped pipelines are strict JSON.
    @Test func theShippedPipelinesAreStrictJSON() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/PipelineRuntime/Pipelines")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 5)
        for f in files {
            #expect(JSONSyntax.problem(in: try Data(contentsOf: folder.appendingPathComponent(f))) == nil, "\(f)")
        }
    }
}
