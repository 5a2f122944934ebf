/// A CXI file that cannot be used: which file, which dataset, what is wrong.
public struct CXIError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let dataset: String
    public let problem: String

    public init(file: String, dataset: String, problem: String) {
        self.file = file
        self.dataset = dataset
        self.problem = problem
    }

    public var description: String { "\(file): \(dataset): \(problem)" }
}
